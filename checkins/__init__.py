"""Check-in analytics, the app side: each participant's feelings over time, group views, alerts.

It talks to the model only through the `/invocations` contract (`scoring.EndpointScorer`) or the
predictor interface (`scoring.ModelScorer`, `model.predictor.load`). `python -m checkins --help`;
docs/checkins.md describes the rules, the flags and the output folder.
"""
