"""Serving throughput: our `serve` on both algorithms, beside the stacks it is judged against.

Every stack answers on this machine, measured one after the other in one run
with wrk (Debian's `wrk`; the AWS-style stack also needs `nginx`):

- fasttext, lstm, ensemble: our `serve` (gunicorn, our gthread worker bound on
  the port) on a fastText model, on an LSTM of the default sizes, and on both
  together with the hand-labelled fastText and the sentence encoder's member (the
  default job's kind of model), trained on the bundled sample unless given;
- flask-floor: a Flask app that only returns a fixed body, on the same gunicorn
  settings (gthread, the same workers × threads, keep-alive 75): what the
  framework alone costs;
- bare-wsgi: a WSGI function returning a fixed body, same settings;
- aws-example: the stack of AWS's scikit_bring_your_own example, nginx (its
  config: 1 worker process, 512 worker connections, 5 MB body cap) proxying to
  gunicorn sync workers on a unix socket, serving the fastText model.

One fixed text per request at each connection count; then, for our two, a distinct
real text per request at the highest count (VADER's cache no longer helps), and
batched throughput: 1,000 distinct real texts per request from `--batch-connections`
clients (Sentiment140's tweets when ../shared/data is here, else the sample's); and the time of one
request alone of 1,000, 5,000 and 50,000 of them (the ensemble's sentence encoder reads the first in
its share of SageMaker's 60 s; the others are answered without it).

    python bench/serving.py [--model-dir DIR] [--lstm-model-dir DIR] [--seconds 20]
                            [--connections 100,1000] [--stacks fasttext,lstm,flask-floor,...]

Prints requests/s, p50/p99 latency and failures per stack and concurrency, and texts/s batched.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import DATA  # noqa: E402

from container.sample import SAMPLE  # noqa: E402
from model.datasets import read_path  # noqa: E402
from model.prepare import prepare  # noqa: E402

BODY = '{"instances": ["I feel a bit better today, thanks for asking :)"]}'
BATCH_TEXTS = 1000
# One request alone, of tweets the sentence encoder reads in its share of 60 s, and of more (answered without it).
LONG_REQUESTS = (1000, 5000, 50_000)
STACKS = ("fasttext", "lstm", "ensemble", "flask-floor", "bare-wsgi", "aws-example")
OURS = ("fasttext", "lstm", "ensemble")
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ }}
http {{
  access_log off;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  upstream gunicorn {{ server unix:{work}/gunicorn.sock; }}
  server {{
    listen 127.0.0.1:{port} deferred;
    client_max_body_size 5m;
    keepalive_timeout 5;
    proxy_read_timeout 1200s;
    location ~ ^/(ping|invocations) {{
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header Host $http_host;
      proxy_redirect off;
      proxy_pass http://gunicorn;
    }}
    location / {{ return 404 "{{}}"; }}
  }}
}}
"""
# The same app as `serve`, for gunicorn's command line (AWS's example runs `gunicorn wsgi:app`).
WSGI = "from container.handler import Handler\nfrom container.environment import ServingSettings\n" \
       "from container.server import create_app\napp = create_app(Handler(ServingSettings.from_env()))\n"
# The references: what answering at all costs, with Flask and without.
FIXED = '[{"label": ["__label__positive"], "prob": [0.97], "sentiment": "positive", "confidence": 0.97}]'
FLASK_FLOOR = f"""from flask import Flask, Response
app = Flask(__name__)
BODY = {FIXED!r}
@app.get("/ping")
def ping():
    return Response(status=200)
@app.post("/invocations")
def invocations():
    return Response(BODY, mimetype="application/json")
"""
BARE_WSGI = f"""BODY = {FIXED!r}.encode()
def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
"""


def wait_healthy(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/ping", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy")


def wrk(url: str, connections: int, seconds: int, work: Path, body: str | list[str] = BODY, timeout: int = 5) -> dict:
    """wrk's figures for `connections` clients POSTing `body` (or each of a list of bodies in turn)
    for `seconds`; a request unanswered after `timeout` seconds counts as a timeout."""
    bodies = [body] if isinstance(body, str) else body
    (work / "bodies.txt").write_text("".join(b + "\n" for b in bodies), encoding="utf-8")
    script = work / "post.lua"  # the bodies read from a file, one a line: no escaping between JSON and Lua
    lua = ["wrk.method = 'POST'", "wrk.headers['Content-Type'] = 'application/json'",
           f"bodies = {{}}; for line in io.lines('{work}/bodies.txt') do bodies[#bodies + 1] = line end"]
    if len(bodies) == 1:  # a fixed body costs wrk nothing per request
        lua.append("wrk.body = bodies[1]")
    else:
        lua.append("n = 0; request = function() n = n % #bodies + 1; return wrk.format(nil, nil, nil, bodies[n]) end")
    script.write_text("\n".join(lua) + "\n")
    output = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
                             "--timeout", f"{timeout}s", "-s", str(script), url + "/invocations"],
                            capture_output=True, text=True).stdout
    number = lambda pattern: float(m.group(1)) if (m := re.search(pattern, output)) else 0.0  # noqa: E731
    percentile = lambda p: m.group(1) if (m := re.search(rf"^\s+{p}%\s+(\S+)", output, re.M)) else "-"  # noqa: E731
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    timeouts = int(errors.group(4)) if errors else 0
    requests_done = int(number(r"(\d+) requests in"))
    return {
        "requests_per_s": number(r"Requests/sec:\s+([\d.]+)"),
        "p50": percentile("50"),
        # wrk leaves timed-out requests out of its percentiles: with more than 1 % of them, p99 is past the timeout.
        "p99": f">{timeout}s" if timeouts > 0.01 * max(requests_done, 1) else percentile("99"),
        "requests": requests_done,
        "non_2xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(int(g) for g in errors.groups()[:3]) if errors else 0,
        "timeouts": timeouts,
    }


def gunicorn_reference(module: str, source: str, port: int, work: Path, workers: int, threads: int) -> list:
    """A fixed-body app on the gunicorn settings `serve` uses (gthread, keep-alive 75)."""
    (work / f"{module}.py").write_text(source)
    return [subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(workers), "--threads", str(threads),
         "--keep-alive", "75", "--backlog", "2048", "--worker-connections", "2000",
         "-b", f"127.0.0.1:{port}", f"{module}:app"],
        env={**os.environ, "PYTHONPATH": str(work)}, cwd=work,
        stdout=(work / f"{module}.log").open("w"), stderr=subprocess.STDOUT)]


def start_ours(model_dir: Path, port: int, work: Path, name: str) -> list:
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": str(port),
           "SENTIMENT_BIND_HOST": "127.0.0.1", "SAGEMAKER_CONTAINER_LOG_LEVEL": "WARNING"}
    return [subprocess.Popen([sys.executable, str(ROOT / "serve")], env=env, cwd=work,
                             stdout=(work / f"{name}.log").open("w"), stderr=subprocess.STDOUT)]


def start_aws_stack(model_dir: Path, port: int, work: Path, workers: int) -> list:
    (work / "wsgi.py").write_text(WSGI)
    (work / "nginx.conf").write_text(NGINX_CONF.format(work=work, port=port))
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "PYTHONPATH": f"{ROOT}:{work}"}
    log = (work / "aws-example.log").open("w")
    gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "sync", "-w", str(workers), "--timeout", "60",
                                 "-b", f"unix:{work}/gunicorn.sock", "wsgi:app"], env=env, cwd=work,
                                stdout=log, stderr=subprocess.STDOUT)
    nginx = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)], stdout=log,
                             stderr=subprocess.STDOUT)
    return [nginx, gunicorn]


def train_sample(work: Path, name: str, hyperparameters: list[str], hand_labelled: bool = False) -> Path:
    """A model trained by `train` on the bundled sample's train split (and its validation split as
    the hand_labelled channel: 1,066 rows, enough for the ensemble's hand-labelled member)."""
    channels = work / "channels"
    if not channels.exists():
        prepare([SAMPLE], channels, log=lambda _: None)
    model_dir = work / name
    flags = [flag for item in hyperparameters for flag in ("-p", item)]
    if hand_labelled:
        flags += ["--hand-labelled", str(channels / "validation")]
    subprocess.run([sys.executable, str(ROOT / "train"), "--train", str(channels / "train"),
                    "--model-dir", str(model_dir), "--output-dir", str(work / f"{name}-output"), *flags],
                   check=True, capture_output=True)
    return model_dir


QUICK_FASTTEXT = ["quantize=false", "buckets=200000", "learning_rate=0.3", "epochs=10", "min_count=1"]


def fasttext_model(work: Path) -> Path:
    """A quick unquantized fastText model (with the lexicon, without the ensemble's LSTM)."""
    return train_sample(work, "fasttext-model", [*QUICK_FASTTEXT, "ensemble=false"])


def ensemble_model(work: Path) -> Path:
    """The default job's kind of model: the quick fastText model, an LSTM of the default sizes, a fastText
    model of the hand-labelled rows and the sentence encoder's head on them, the lexicon."""
    return train_sample(work, "ensemble-model", [*QUICK_FASTTEXT, "ensemble=true"], hand_labelled=True)


def lstm_model(work: Path) -> Path:
    """An LSTM of the default sizes (embed 128, hidden 64), on fewer epochs than the default to be quick."""
    return train_sample(work, "lstm-model", ["algorithm=lstm", "epochs=1"])


def real_texts() -> tuple[list[str], str]:
    """Distinct real texts, and where from: Sentiment140's 110k training tweets when ../shared/data
    is here (more than a run sends, so VADER's cache of 100k never holds the next one), else the
    bundled sample's 10,667 (repeated within a run: the cache then spares part of the work)."""
    sentiment140 = DATA / "sentiment140" / "training.110k.processed.noemoticon.csv"
    if sentiment140.exists():
        return list(dict.fromkeys(e.text for e in read_path(sentiment140)[0])), "Sentiment140's 110k tweets"
    return list(dict.fromkeys(line.split(" ", 1)[1] for line in SAMPLE.read_text(encoding="utf-8").splitlines())), \
        "the bundled sample (repeats within a run)"


def distinct_bodies(texts: list[str]) -> list[str]:
    """One request per text, in turn."""
    return [json.dumps({"instances": [text]}) for text in texts]


def batch_bodies(texts: list[str]) -> list[str]:
    """Requests of BATCH_TEXTS texts each, in turn."""
    return [json.dumps({"instances": texts[start:start + BATCH_TEXTS]})
            for start in range(0, len(texts) - BATCH_TEXTS + 1, BATCH_TEXTS)]


def start(stack: str, models: dict[str, Path], port: int, work: Path, workers: int, threads: int) -> list:
    if stack in OURS:
        return start_ours(models[stack], port, work, stack)
    if stack == "flask-floor":
        return gunicorn_reference("flask_floor", FLASK_FLOOR, port, work, workers, threads)
    if stack == "bare-wsgi":
        return gunicorn_reference("bare_wsgi", BARE_WSGI, port, work, workers, threads)
    return start_aws_stack(models["fasttext"], port, work, workers)


def measure(stack: str, url: str, args: argparse.Namespace, work: Path) -> dict:
    wrk(url, 10, 2, work)  # warm-up
    results = {}
    if stack in OURS:
        time.sleep(1)  # the warm-up's last requests answered: these are alone
        results["alone"] = {size: one_request(url, real_texts()[0][:size]) for size in LONG_REQUESTS}
    results.update({connections: wrk(url, connections, args.seconds, work)
                    for connections in map(int, args.connections.split(","))})
    if stack in OURS:
        # The same text every time is what the references are measured on, but VADER's cache then
        # spares the lexicon's work; real check-ins are distinct, so they are measured too.
        texts, _ = real_texts()
        results["distinct"] = wrk(url, max(map(int, args.connections.split(","))), args.seconds, work,
                                  distinct_bodies(texts))
        # At least 60 s: with the sentence encoder, four requests of 1,000 texts at once take ~25 s.
        results["batched"] = wrk(url, args.batch_connections, max(args.seconds, 60), work, batch_bodies(texts),
                                 timeout=60)
    return results


def one_request(url: str, texts: list[str]) -> float:
    """Seconds to answer one request of `texts`, sent alone."""
    started = time.monotonic()
    reply = requests.post(url + "/invocations", json={"instances": texts}, timeout=120)
    reply.raise_for_status()
    return time.monotonic() - started


def report(results: dict, args: argparse.Namespace, workers: int, threads: int) -> None:
    print(f"POST /invocations, one text a request, {workers} workers × {threads} threads each, "
          f"wrk {args.seconds} s per row, {os.cpu_count()} cores")
    columns = ("conns", "req/s", "p50", "p99", "requests", "non-2xx", "sock err", "timeouts")
    print(f"{'stack':<12} " + " ".join(f"{c:>9}" for c in columns))
    most = max(map(int, args.connections.split(",")))
    for stack, rows in results.items():
        for connections, r in rows.items():
            if connections not in ("batched", "alone"):
                name, conns = (stack + " *", most) if connections == "distinct" else (stack, connections)
                print(f"{name:<12} {conns:>9} {r['requests_per_s']:>9.0f} {r['p50']:>9} {r['p99']:>9} "
                      f"{r['requests']:>9} {r['non_2xx']:>9} {r['socket_errors']:>9} {r['timeouts']:>9}")
    print(f"* a distinct real text in each request, from {real_texts()[1]} (the others send one fixed text)")
    print(f"\nbatched: {BATCH_TEXTS:,} distinct real texts a request, {args.batch_connections} connections, "
          f"{max(args.seconds, 60)} s")
    for stack, rows in results.items():
        if "batched" in rows:
            r = rows["batched"]
            print(f"{stack:<12} {r['requests_per_s'] * BATCH_TEXTS:>9,.0f} texts/s  p50 {r['p50']}  p99 {r['p99']}  "
                  f"non-2xx {r['non_2xx']}  socket errors {r['socket_errors']}  timeouts {r['timeouts']}")
    alone = {stack: rows["alone"] for stack, rows in results.items() if "alone" in rows}
    if alone:
        print("\none request alone: " + "; ".join(
            f"{stack} " + ", ".join(f"{size:,} texts {seconds:.1f} s" for size, seconds in sizes.items())
            for stack, sizes in alone.items()))
    print()
    for connections in map(int, args.connections.split(",")):
        ok = {stack: rows[connections]["requests_per_s"] * (1 - rows[connections]["non_2xx"]
                                                            / max(rows[connections]["requests"], 1))
              for stack, rows in results.items()}
        for ours in OURS:
            for reference in ("flask-floor", "bare-wsgi", "aws-example"):
                if ours in ok and reference in ok:
                    print(f"{connections} connections: successful req/s {ours} / {reference} = "
                          f"{ok[ours] / max(ok[reference], 1e-9):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="the fastText model (default: trained on the sample)")
    parser.add_argument("--lstm-model-dir", type=Path, help="the LSTM model (default: trained on the sample)")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", default="100,1000")
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--stacks", default=",".join(STACKS), help=f"some of {','.join(STACKS)}")
    args = parser.parse_args()
    stacks = args.stacks.split(",")
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None
               and (tool == "wrk" or "aws-example" in stacks)]
    if missing:
        print(f"needs {' and '.join(missing)}: apt-get install {' '.join(missing)}")
        return 2
    workers = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1))
    threads = int(os.environ.get("SENTIMENT_WORKER_THREADS", 4))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx's workers (www-data) must reach the gunicorn socket in it
        models = {}
        if {"fasttext", "aws-example"} & set(stacks):
            models["fasttext"] = args.model_dir or fasttext_model(work)
        if "lstm" in stacks:
            models["lstm"] = args.lstm_model_dir or lstm_model(work)
        if "ensemble" in stacks:
            models["ensemble"] = ensemble_model(work)
        for number, stack in enumerate(stacks):
            port = 18800 + number
            processes = start(stack, models, port, work, workers, threads)
            try:
                try:
                    wait_healthy(f"http://127.0.0.1:{port}")
                except RuntimeError:
                    print("".join(p.read_text()[-3000:] for p in work.glob("*.log")))
                    raise
                results[stack] = measure(stack, f"http://127.0.0.1:{port}", args, work)
            finally:
                for process in processes:
                    process.terminate()
                    process.wait(30)
    report(results, args, workers, threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
