# One image for SageMaker's bring-your-own-container contract:
#   docker run IMAGE train   |   docker run IMAGE serve
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: compile fastText (no wheel on PyPI) and chainer's sdist into a venv
FROM ${BASE_IMAGE} AS build
RUN command -v g++ >/dev/null || (apt-get update && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*)
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements-build.txt requirements.txt /tmp/
RUN pip install -q -r /tmp/requirements-build.txt \
    && pip install -q --no-deps --no-build-isolation -r /tmp/requirements.txt \
    && pip uninstall -q -y pybind11 wheel pip \
    && find /opt/venv -name "__pycache__" -prune -exec rm -rf {} + \
    && find /opt/venv -path "*/tests/*" -name "*.py" -delete \
    && python -c "import chainer, fasttext, flask, gunicorn, sagemaker_inference.errors"

# --- runtime: the venv and our code, no compilers
FROM ${BASE_IMAGE}
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
ENV PATH=/opt/program:/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/opt/program
COPY --from=build /opt/venv /opt/venv
COPY train serve /opt/program/
COPY container /opt/program/container
COPY model /opt/program/model
COPY data/sample /opt/program/data/sample
WORKDIR /opt/program
EXPOSE 8080
ENTRYPOINT ["/opt/program/container/entrypoint.sh"]
