"""`python -m model.review`: reviewing captured unrecognized messages, resuming, de-duplication, bulk import."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT

from model.captures import ReviewError, read_captures
from model.feedback import STATE_FILE, import_labelled, locked
from model.review import review


def capture(text: str, moment: str, guess: str = "positive", confidence: float = 0.55) -> str:
    """One line as the server captures it."""
    return json.dumps({"source": text, "guess": guess, "confidence": confidence,
                       "probs": {guess: confidence, "other": round(1 - confidence, 2)}, "threshold": 0.7,
                       "model_version": "4930bf2931cc", "time": moment, "request_id": uuid.uuid4().hex})


def write_lines(path: Path, lines: list[str], partial: str = "", mode: str = "w") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding="utf-8") as out:
        out.write("".join(line + "\n" for line in lines) + partial)
    return path


def run(*args: str | Path, answers: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model.review", *map(str, args)], input=answers,
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def feedback_lines(feedback: Path) -> list[str]:
    path = feedback / "feedback.txt"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.fixture
def captures(tmp_path: Path) -> Path:
    """Five messages in three files (one in a sub-folder, as `aws s3 sync` keeps S3 prefixes), out of time order."""
    folder = tmp_path / "captures"
    write_lines(folder / "unrecognized-host1-1.jsonl", [
        capture("second  message\n  with\tspaces", "2026-11-23T20:00:02.000Z"),
        capture("fourth message", "2026-11-23T20:00:04Z", guess="negative", confidence=0.61),
    ])
    write_lines(folder / "unrecognized-host2-1.jsonl", [
        capture("first message", "2026-11-23T20:00:01.500Z"),
        capture("fifth message", "2026-11-23T20:00:05Z"),
    ])
    write_lines(folder / "2026/11/23/unrecognized-host3-1.jsonl", [capture("third message", "2026-11-23T20:00:03Z")])
    write_lines(folder / "other.log", ["not a capture file"])
    return folder


def test_cli_labels_in_time_order_then_resumes_and_picks_up_new_lines(captures: Path, tmp_path: Path):
    feedback = tmp_path / "feedback"
    result = run(captures, "--feedback", feedback, answers="p\nn\ns\nq\n")
    assert result.returncode == 0, result.stderr
    assert feedback_lines(feedback) == ["__label__positive first message",
                                        "__label__negative second message with spaces"]
    out = result.stdout
    assert "[1/5] model guess: positive (confidence 0.55)" in out and "[3/5]" in out and "[4/5]" in out
    assert out.index("first message") < out.index("second message") < out.index("third message")
    assert "labelled 1 positive, 1 negative; skipped 1; already known 0; remaining 2" in out
    assert len(json.loads((feedback / STATE_FILE).read_text())["answers"]) == 3

    result = run(captures, "--feedback", feedback, answers="p\n")  # ends at EOF: quits cleanly
    assert result.returncode == 0, result.stderr
    assert "[1/2] model guess: negative (confidence 0.61)" in result.stdout
    assert "fourth message" in result.stdout and "third message" not in result.stdout
    assert "end of input" in result.stdout
    assert feedback_lines(feedback)[2:] == ["__label__positive fourth message"]

    # The servers go on capturing: a new complete line is picked up, a line still being written is not.
    log = captures / "unrecognized-host1-1.jsonl"
    write_lines(log, [capture("sixth message", "2026-11-23T21:00:00Z")], partial='{"source": "seven', mode="a")
    result = run(captures, "--feedback", feedback, answers="n\nn\n")
    assert result.returncode == 0, result.stderr
    assert "[1/2]" in result.stdout and "fifth message" in result.stdout and "sixth message" in result.stdout
    assert "seven" not in result.stdout and "malformed" not in result.stdout
    assert feedback_lines(feedback)[3:] == ["__label__negative fifth message", "__label__negative sixth message"]

    write_lines(log, [], partial='th message", "time": "2026-11-23T22:00:00Z"}\n', mode="a")
    result = run(captures, "--feedback", feedback, answers="p\n")
    assert "[1/1]" in result.stdout and "seventh message" in result.stdout
    assert feedback_lines(feedback)[-1] == "__label__positive seventh message"
    assert len(feedback_lines(feedback)) == 6


def test_known_messages_are_not_asked(tmp_path: Path):
    train = write_lines(tmp_path / "train" / "train.txt", ["__label__positive i loove it !!",
                                                          "__label__negative what a day"])
    feedback = tmp_path / "feedback"
    write_lines(feedback / "feedback.txt", ["__label__negative Already labelled, by hand"])
    folder = tmp_path / "captures"
    write_lines(folder / "unrecognized-a.jsonl", [
        capture("I LOOOOVE it!!!!", "2026-11-23T20:00:01Z"),  # cleans to a train text
        capture("already   labelled, BY hand", "2026-11-23T20:00:02Z"),  # cleans to a feedback text
        capture("New one", "2026-11-23T20:00:03Z"),
        capture("new ONE", "2026-11-23T20:00:04Z"),  # same cleaned text as the one before: asked once
        capture("another", "2026-11-23T20:00:05Z"),
    ])
    result = run(folder, "--feedback", feedback, "--train", train.parent, answers="p\ns\n")
    assert result.returncode == 0, result.stderr
    assert "I LOOOOVE" not in result.stdout and "BY hand" not in result.stdout
    assert "[1/2]" in result.stdout and "New one" in result.stdout and "new ONE" not in result.stdout
    assert "labelled 1 positive, 0 negative; skipped 1; already known 3; remaining 0" in result.stdout
    assert feedback_lines(feedback) == ["__label__negative Already labelled, by hand", "__label__positive New one"]

    # A skipped text is not asked again when captured again; a labelled one neither.
    write_lines(folder / "unrecognized-b.jsonl", [capture("ANOTHER", "2026-11-23T21:00:00Z"),
                                                  capture("new one", "2026-11-23T21:00:01Z")])
    result = run(folder, "--feedback", feedback, "--train", train.parent, answers="")
    assert "0 to review" in result.stdout and "already known 2" in result.stdout


def test_invalid_answer_is_refused_and_asked_again(captures: Path, tmp_path: Path):
    feedback = tmp_path / "feedback"
    result = run(captures, "--feedback", feedback, answers="maybe\n\nNEGATIVE\nPositive\nquit\n")
    assert result.returncode == 0, result.stderr
    assert "'maybe' is not an answer: type p (positive), n (negative), s (skip) or q (quit)" in result.stdout
    assert result.stdout.count("[1/5]") == 1 and result.stdout.count("[p]ositive  [n]egative") == 5
    assert feedback_lines(feedback) == ["__label__negative first message",
                                        "__label__positive second message with spaces"]


def test_end_of_input_quits_cleanly(captures: Path, tmp_path: Path):
    result = run(captures, "--feedback", tmp_path / "feedback", answers="")
    assert result.returncode == 0, result.stderr
    assert "end of input" in result.stdout and "remaining 5" in result.stdout
    assert feedback_lines(tmp_path / "feedback") == []


def test_malformed_lines_are_counted_and_skipped(tmp_path: Path):
    folder = tmp_path / "captures"
    write_lines(folder / "unrecognized-a.jsonl", [
        "not json at all", '{"source": "cut', "[1, 2]", '{"guess": "positive"}', '{"source": "  "}',
        '{"source": "fine", "time": "yesterday"}', capture("also fine", "2026-11-23T20:00:00Z"), ""])
    (folder / "unrecognized-b.jsonl").write_bytes(b'{"source": "caf\xe9"}\n')  # not UTF-8
    result = run(folder, "--feedback", tmp_path / "feedback", answers="p\np\n")
    assert result.returncode == 0, result.stderr
    assert "ignored 3 malformed lines: not valid JSON" in result.stdout
    assert "ignored 1 malformed line: not a JSON object" in result.stdout
    assert 'ignored 2 malformed lines: no text in "source"' in result.stdout
    # A message without a readable time comes after the timed ones.
    assert feedback_lines(tmp_path / "feedback") == ["__label__positive also fine", "__label__positive fine"]


def test_unusable_arguments_exit_1_with_a_clear_message(tmp_path: Path, captures: Path):
    result = run(tmp_path / "nowhere", "--feedback", tmp_path / "feedback")
    assert result.returncode == 1 and "no such folder" in result.stderr and "aws s3 sync" in result.stderr
    result = run(captures, "--feedback", tmp_path / "feedback", "--train", tmp_path / "missing.txt")
    assert result.returncode == 1 and "missing.txt" in result.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / STATE_FILE).write_text("{not json")
    result = run(captures, "--feedback", tmp_path / "broken")
    assert result.returncode == 1 and STATE_FILE in result.stderr and "move it away" in result.stderr
    result = run("--feedback", tmp_path / "feedback")
    assert result.returncode == 2 and "either a CAPTURE_DIR" in result.stderr
    result = run(captures, "--import", captures, "--feedback", tmp_path / "feedback")
    assert result.returncode == 2


def test_bulk_import_of_a_label_text_csv(tmp_path: Path):
    train = write_lines(tmp_path / "train.txt", ["__label__positive sunny day", "__label__negative rainy day"])
    feedback = tmp_path / "feedback"
    write_lines(feedback / "feedback.txt", ["__label__negative already here"])
    labelled = write_lines(tmp_path / "labelled.csv", [
        "label,text",
        "positive,great   check-in",
        "neutral,just a day",
        'negative,"tired, sad"',
        "positive,GREAT check-in",  # duplicate within the file
        "positive,Sunny DAY",  # in the train data
        "positive,already here",  # in the feedback, with the other label
        "negative,bad night",
    ])
    result = run("--import", labelled, "--feedback", feedback, "--train", train)
    assert result.returncode == 0, result.stderr
    assert feedback_lines(feedback) == ["__label__negative already here", "__label__positive great check-in",
                                        "__label__negative tired, sad", "__label__negative bad night"]
    assert "labelled 1 positive, 2 negative; skipped 0; already known 3 (1 with the other label)" in result.stdout
    assert "ignored 1 row labelled 'neutral'" in result.stdout
    result = run("--import", labelled, "--feedback", feedback, "--train", train)  # importing twice adds nothing
    assert "labelled 0 positive, 0 negative" in result.stdout and len(feedback_lines(feedback)) == 4


def test_import_appends_after_a_file_without_final_newline(tmp_path: Path):
    feedback = tmp_path / "feedback"
    feedback.mkdir()
    (feedback / "feedback.txt").write_text("__label__positive edited by hand")
    labelled = write_lines(tmp_path / "more.jsonl", [json.dumps({"source": "from json", "label": "negative"})])
    summary = import_labelled([labelled], feedback, out=io.StringIO())
    assert summary.negative == 1
    assert feedback_lines(feedback) == ["__label__positive edited by hand", "__label__negative from json"]


def test_functions_can_be_driven_directly_and_ctrl_c_keeps_answers(captures: Path, tmp_path: Path):
    feedback = tmp_path / "feedback"

    def answers_then_ctrl_c():
        yield "p"
        yield "s"
        raise KeyboardInterrupt

    out = io.StringIO()
    summary = review(captures, feedback, [], answers_then_ctrl_c(), out)
    assert summary.interrupted and (summary.positive, summary.skipped, summary.remaining) == (1, 1, 3)
    assert "interrupted" in out.getvalue()
    assert feedback_lines(feedback) == ["__label__positive first message"]
    summary = review(captures, feedback, [], iter(["n", "n", "n"]), io.StringIO())
    assert (summary.negative, summary.remaining, summary.interrupted) == (3, 0, False)
    assert [line.split(" ", 1)[1] for line in feedback_lines(feedback)] == [
        "first message", "third message", "fourth message", "fifth message"]
    assert read_captures(captures).captures[0].text == "first message"


def test_a_line_written_to_feedback_but_not_to_the_state_is_not_asked_again(captures: Path, tmp_path: Path):
    """Stopped between the two writes (feedback first, state second): the feedback de-duplication covers it."""
    feedback = tmp_path / "feedback"
    write_lines(feedback / "feedback.txt", ["__label__positive first message"])
    summary = review(captures, feedback, [], iter([]), io.StringIO())
    assert summary.known == 1 and summary.remaining == 4


def test_one_writer_at_a_time(captures: Path, tmp_path: Path):
    feedback = tmp_path / "feedback"
    with locked(feedback), pytest.raises(ReviewError, match="another review"):
        review(captures, feedback, [], iter(["p"]), io.StringIO())


def test_terminal_escapes_in_messages_are_shown_escaped(tmp_path: Path):
    folder = tmp_path / "captures"
    write_lines(folder / "unrecognized-a.jsonl", [capture("red \x1b[31malert\x1b[0m \u202eevil", "2026-11-23T20:00Z")])
    out = io.StringIO()
    review(folder, tmp_path / "feedback", [], iter(["q"]), out)
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()
    assert "red \\x1b[31malert\\x1b[0m \\u202eevil" in out.getvalue()


# --- a real terminal -------------------------------------------------------------


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_review_in_a_real_terminal(captures: Path, tmp_path: Path):
    feedback = tmp_path / "feedback"
    socket = f"review-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # a tmux server of our own, killed at the end
    command = (f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m model.review "
               f"{shlex.quote(str(captures))} --feedback {shlex.quote(str(feedback))}; echo EXIT=$?; sleep 120")

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket, *args], check=True, capture_output=True, text=True,
                              timeout=10).stdout

    def screen_when(condition, what: str) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            screen = tmux("capture-pane", "-p", "-t", "review")
            if condition(screen):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"the terminal never showed {what}:\n{screen}")

    def prompt_of(number: int):
        return lambda screen: f"[{number}/5]" in screen and screen.rstrip().endswith("[q]uit?")

    tmux("new-session", "-d", "-s", "review", "-x", "120", "-y", "30", command)
    socket_path = Path(tmux("display-message", "-p", "#{socket_path}").strip())
    try:
        screen = screen_when(prompt_of(1), "the first prompt")
        assert "first message" in screen and "model guess: positive (confidence 0.55)" in screen
        tmux("send-keys", "-t", "review", "x", "Enter")
        screen_when(lambda s: "'x' is not an answer" in s and s.rstrip().endswith("[q]uit?"), "the refusal")
        tmux("send-keys", "-t", "review", "p", "Enter")
        screen = screen_when(prompt_of(2), "the second prompt")
        assert "second message with spaces" in screen
        tmux("send-keys", "-t", "review", "n", "Enter")
        screen_when(prompt_of(3), "the third prompt")
        tmux("send-keys", "-t", "review", "C-c")  # Ctrl-C at a prompt: what was answered is kept
        screen = screen_when(lambda s: "EXIT=" in s, "the exit code")
        assert "EXIT=130" in screen and "interrupted" in screen
        assert "labelled 1 positive, 1 negative; skipped 0; already known 0; remaining 3" in screen
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
        socket_path.unlink(missing_ok=True)
    assert feedback_lines(feedback) == ["__label__positive first message",
                                        "__label__negative second message with spaces"]
    result = run(captures, "--feedback", feedback, answers="q\n")
    assert "[1/3]" in result.stdout and "third message" in result.stdout
