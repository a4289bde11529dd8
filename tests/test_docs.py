"""The README's hyperparameter tables are the specs the code validates against."""

from conftest import ROOT

from docs.update_readme import README, render


def test_readme_hyperparameter_tables_match_the_code():
    text = README.read_text(encoding="utf-8")
    assert "<!-- hyperparameters:blazingtext -->" in text
    assert render(text) == text, "README tables are stale: run `python docs/update_readme.py`"


def test_readme_gives_the_two_commands_ci_and_users_run():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in text and "make test" in text
    assert "make test" in (ROOT / ".ci/run").read_text()
