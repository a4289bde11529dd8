"""Serving throughput: our `serve` against the stack of AWS's scikit_bring_your_own example.

Both serve the same model through the same Flask app on this machine, measured
one after the other in one run with wrk (Debian's `wrk`; the AWS-style stack
also needs `nginx`):

- ours: gunicorn gthread workers bound directly on the port (`serve`);
- AWS's example: nginx (its config: 1 worker process, default 512 worker
  connections, 5 MB body cap) proxying to gunicorn sync workers on a unix socket.

    python bench/serving.py [--model-dir DIR] [--seconds 10] [--connections 100,1000]

Prints requests/s, latency and failures per stack and concurrency, and the ratio.
"""

from __future__ import annotations

import argparse
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

from container.sample import SAMPLE  # noqa: E402
from model.prepare import prepare  # noqa: E402

BODY = '{"instances": ["I feel a bit better today, thanks for asking :)"]}'
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


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/ping", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy")


def wrk(url: str, connections: int, seconds: int, work: Path) -> dict:
    script = work / "post.lua"
    script.write_text("wrk.method = 'POST'\nwrk.body = [[" + BODY + "]]\n"
                      "wrk.headers['Content-Type'] = 'application/json'\n")
    output = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
                             "-s", str(script), url + "/invocations"], capture_output=True, text=True).stdout
    number = lambda pattern: float(m.group(1)) if (m := re.search(pattern, output)) else 0.0  # noqa: E731
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    total = number(r"(\d+) requests in")
    return {
        "requests_per_s": number(r"Requests/sec:\s+([\d.]+)"),
        "p50": re.search(r"50%\s+(\S+)", output).group(1) if "50%" in output else "-",
        "p99": re.search(r"99%\s+(\S+)", output).group(1) if "99%" in output else "-",
        "requests": int(total),
        "non_2xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
    }


def start_ours(model_dir: Path, port: int, work: Path) -> subprocess.Popen:
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": str(port),
           "SENTIMENT_BIND_HOST": "127.0.0.1", "SAGEMAKER_CONTAINER_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, str(ROOT / "serve")], env=env, cwd=work,
                            stdout=(work / "ours.log").open("w"), stderr=subprocess.STDOUT)


def start_aws_stack(model_dir: Path, port: int, work: Path, workers: int) -> list[subprocess.Popen]:
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


def sample_model(work: Path) -> Path:
    """A quick unquantized fastText model on the bundled sample."""
    prepare([SAMPLE], work / "channels", log=lambda _: None)
    model_dir = work / "model"
    subprocess.run([sys.executable, str(ROOT / "train"), "--train", str(work / "channels/train"),
                    "--model-dir", str(model_dir), "--output-dir", str(work / "output"), "-p", "quantize=false",
                    "-p", "buckets=200000", "-p", "learning_rate=0.3", "-p", "epochs=10", "-p", "min_count=1"],
                   check=True, capture_output=True)
    return model_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", default="100,1000")
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if missing:
        print(f"needs {' and '.join(missing)}: apt-get install {' '.join(missing)}")
        return 2
    workers = os.cpu_count() or 1
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx's workers (www-data) must reach the gunicorn socket in it
        model_dir = args.model_dir or sample_model(work)
        for stack in ("ours", "aws-example"):
            port = 18800 + len(results)
            processes = ([start_ours(model_dir, port, work)] if stack == "ours"
                         else start_aws_stack(model_dir, port, work, workers))
            try:
                try:
                    wait_healthy(f"http://127.0.0.1:{port}")
                except RuntimeError:
                    print((work / f"{stack}.log").read_text()[-3000:])
                    raise
                wrk(f"http://127.0.0.1:{port}", 10, 2, work)  # warm-up
                for connections in map(int, args.connections.split(",")):
                    results[stack, connections] = wrk(f"http://127.0.0.1:{port}", connections, args.seconds, work)
            finally:
                for process in processes:
                    process.terminate()
                    process.wait(30)
    print(f"POST /invocations, one text, {workers} workers each, wrk {args.seconds} s per row, {os.cpu_count()} cores")
    columns = ("conns", "req/s", "p50", "p99", "requests", "non-2xx", "sock err")
    print(f"{'stack':<12} " + " ".join(f"{c:>9}" for c in columns))
    for (stack, connections), r in results.items():
        print(f"{stack:<12} {connections:>9} {r['requests_per_s']:>9.0f} {r['p50']:>9} {r['p99']:>9} "
              f"{r['requests']:>9} {r['non_2xx']:>9} {r['socket_errors']:>9}")
    for connections in map(int, args.connections.split(",")):
        ours, aws = results["ours", connections], results["aws-example", connections]
        aws_ok = aws["requests_per_s"] * (1 - aws["non_2xx"] / max(aws["requests"], 1))
        ours_ok = ours["requests_per_s"] * (1 - ours["non_2xx"] / max(ours["requests"], 1))
        print(f"{connections} connections: successful req/s ours / aws-example = {ours_ok / max(aws_ok, 1e-9):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
