#!/bin/sh
# The image's exec-form ENTRYPOINT. SageMaker runs `docker run IMAGE train` and
# `docker run IMAGE serve`; `sample` serves the bundled sample model (training it
# first if the model folder is empty), `prepare` splits raw data into channels,
# `review` labels captured unrecognized messages.
set -e
command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  train|serve) exec "/opt/program/$command" "$@" ;;
  sample) exec python -m container.sample "$@" ;;
  prepare) exec python -m model.prepare "$@" ;;
  review) exec python -m model.review "$@" ;;
  *)
    echo "usage: docker run IMAGE train|serve|sample|prepare|review [args]" >&2
    echo "  train    run a SageMaker training job from /opt/ml (or the SM_* variables)" >&2
    echo "  serve    serve /opt/ml/model on port 8080 (or SAGEMAKER_BIND_TO_PORT)" >&2
    echo "  sample   like serve, training the bundled sample model first if there is none" >&2
    echo "  prepare  split raw labelled files into train/validation/test channels" >&2
    echo "  review   label captured unrecognized messages (docker run -it ... review CAPTURES --feedback DIR)" >&2
    exit 2 ;;
esac
