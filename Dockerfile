# rtb-inference: the SageMaker serving image (docs/container.md).
#
#   docker build -t rtb-inference .
#   docker run --rm -p 8080:8080 rtb-inference serve
#
# Builds unchanged with Docker or podman. BASE_IMAGE may be any Debian bookworm image with
# python3 (3.11) and the venv module: the public python:3.11-slim-bookworm by default; CI builds
# FROM a local debootstrap image because it has no registry (.ci/setup.d/10-containers.sh).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# venv: the runtime dependencies, installed from the hash-locked requirements/runtime.txt.
FROM ${BASE_IMAGE} AS venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
COPY requirements/runtime.txt /tmp/requirements/runtime.txt
# Nothing at run time installs packages, and no test suite of a dependency runs in the image.
# scipy is a hard dependency of treelite and tl2cgen, which import only scipy.sparse (and its
# scipy._lib): the rest of scipy, with the OpenBLAS/gfortran it links, is ~100 MB nobody loads.
# The runtime stage proves the pruned set still imports, compiles and predicts. uvloop and
# httptools ship 13 MB of DWARF debug information: stripped (files patched with an RPATH by
# auditwheel are left alone, as strip can break them).
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --quiet --no-deps --only-binary=:all: --require-hashes \
        -r /tmp/requirements/runtime.txt \
 && /opt/venv/bin/pip uninstall --quiet --yes pip setuptools \
 && cd /opt/venv/lib/python3*/site-packages \
 && find . -depth -type d -name tests -exec rm -rf {} + \
 && find scipy -mindepth 1 -maxdepth 1 -type d \
        ! -name _lib ! -name sparse ! -name __pycache__ -exec rm -rf {} + \
 && rm -rf scipy.libs scipy/sparse/linalg scipy/sparse/csgraph scipy/conftest.py \
 && find . -name '*.so' ! -path '*.libs/*' -exec sh -c \
        'for f; do readelf -d "$f" | grep -qE "R(UN)?PATH" || strip --strip-debug "$f"; done' sh {} + \
 && /opt/venv/bin/python -c "import fastapi, numpy, orjson, scipy.sparse, tl2cgen, treelite, treelite.gtil, uvicorn, uvloop"

# ---------------------------------------------------------------------------------------------
# fastparse: the bulk request parser (serve/fastparse.c, see serve/fastparse.py), compiled here
# so that every image has it, RUNTIME_COMPILER=none included. The server loads it only if it
# was built from the fastparse.c beside it (its sha256 is compiled in).
FROM venv AS fastparse
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY serve /opt/rtb/app/serve
RUN cd /opt/rtb/app && /opt/venv/bin/python -m serve.fastparse /opt/rtb/fastparse.so

# ---------------------------------------------------------------------------------------------
# trainer: trains and compiles the default RTB model. Only here: xgboost, at the version and
# hashes locked in requirements/dev.txt.
FROM venv AS trainer
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY requirements/dev.txt /tmp/requirements/dev.txt
RUN awk '/^xgboost-cpu==/ { keep = 1 } keep { print } keep && !/\\$/ { exit }' \
        /tmp/requirements/dev.txt >/tmp/requirements/train.txt \
 && grep -q '^xgboost-cpu==' /tmp/requirements/train.txt \
 && python3 -m venv /opt/train \
 && /opt/train/bin/pip install --quiet --no-deps --only-binary=:all: --require-hashes \
        --target /opt/train/xgboost -r /tmp/requirements/train.txt
COPY model /opt/rtb/app/model
RUN cd /opt/rtb/app \
 && PYTHONPATH=/opt/rtb/app:/opt/train/xgboost /opt/venv/bin/python -m model train \
        --output /tmp/default-model.tar.gz \
 && mkdir -p /opt/rtb/default-model \
 && tar -xzf /tmp/default-model.tar.gz -C /opt/rtb/default-model \
 && test -f /opt/rtb/default-model/manifest.json \
 && mkdir -p /opt/rtb/selfcheck \
 && mv /tmp/default-model.xgboost.json /opt/rtb/selfcheck/xgboost-model.json

# ---------------------------------------------------------------------------------------------
# runtime: what SageMaker runs.
FROM ${BASE_IMAGE} AS runtime
# The C toolchain tl2cgen needs to compile a raw SageMaker XGBoost artifact at start-up. With
# RUNTIME_COMPILER=none the image is smaller and carries no compiler; a raw artifact is then
# served through treelite's portable predictor (slower), and a compiled artifact is unaffected.
ARG RUNTIME_COMPILER=gcc
# What tl2cgen runs is `gcc -c -O3 -fPIC` then `gcc -shared`: the LTO compiler, sanitizer and
# profiling runtimes, the gold linker and static C libraries are never used and are removed.
RUN case "$RUNTIME_COMPILER" in \
      gcc) apt-get update \
        && apt-get install -y --no-install-recommends gcc libc6-dev \
        && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
                  /usr/share/doc/* /usr/share/man/* /usr/share/locale/* \
        && triplet="$(gcc -dumpmachine)" \
        && gcc_lib="$(dirname "$(gcc -print-libgcc-file-name)")" \
        && rm -rf "$gcc_lib/lto1" /usr/bin/*lto-dump* /usr/bin/*gcov* /usr/bin/*ld.gold* \
                  /usr/bin/*dwp /usr/bin/*gprof* /usr/bin/*gp-* \
                  /usr/lib/"$triplet"/lib*san.so* /usr/lib/"$triplet"/libgprofng* \
                  /usr/lib/"$triplet"/gprofng "$gcc_lib"/lib*san*.a "$gcc_lib"/libgomp.a \
                  "$gcc_lib"/libquadmath.a "$gcc_lib"/libitm.a "$gcc_lib"/libatomic.a \
        && find /usr/lib/"$triplet" -maxdepth 1 -name '*.a' ! -name libc_nonshared.a -delete \
        && printf 'int twice(int x) { return 2 * x; }\n' >/tmp/check.c \
        && gcc -c -O3 -fPIC -std=c99 -o /tmp/check.o /tmp/check.c \
        && gcc -shared -O3 -std=c99 -o /tmp/check.so /tmp/check.o \
        && rm /tmp/check.* ;; \
      none) ;; \
      *) echo "RUNTIME_COMPILER must be gcc or none, not '$RUNTIME_COMPILER'" >&2; exit 2 ;; \
    esac
COPY --from=venv /opt/venv /opt/venv
COPY --from=trainer /opt/rtb/default-model /opt/rtb/default-model
COPY model /opt/rtb/app/model
COPY serve /opt/rtb/app/serve
COPY --from=fastparse /opt/rtb/fastparse.so /opt/rtb/app/serve/_fastparse.so
COPY container /opt/rtb/app/container
# `serve` as pip would write it for pyproject's [project.scripts]; byte-compiled ahead of time
# because a read-only root file system cannot cache bytecode at start-up. Nothing installs
# packages at run time: ensurepip's bundled wheels (Debian: /usr/share/python-wheels) go too.
RUN printf '%s\n' '#!/opt/venv/bin/python' 'import sys' 'from container.entrypoint import main' \
        'if __name__ == "__main__":' '    sys.exit(main())' >/opt/venv/bin/serve \
 && chmod 0755 /opt/venv/bin/serve \
 && /opt/venv/bin/python -m compileall -q /opt/rtb/app \
 && rm -rf /usr/share/python-wheels /usr/lib/python3*/ensurepip/_bundled \
           /usr/local/lib/python3*/ensurepip/_bundled

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/rtb/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RTB_MODEL_DIR=/opt/ml/model \
    RTB_DEFAULT_MODEL_DIR=/opt/rtb/default-model

# Self-check of this very image (pruned scipy, trimmed compiler): import the default model's
# XGBoost JSON as a raw model is imported at start-up, and load the baked model as a worker does.
COPY --from=trainer /opt/rtb/selfcheck /tmp/selfcheck
RUN python -m model build /tmp/selfcheck --output /tmp/selfcheck-artifact --quiet \
        $(command -v gcc >/dev/null || echo --no-compile) \
 && python -c "from pathlib import Path; from serve.predictor import load_model; \
[load_model(Path(d)) for d in ('/tmp/selfcheck-artifact', '/opt/rtb/default-model')]" \
 && rm -rf /tmp/selfcheck /tmp/selfcheck-artifact

# The prebuilt bulk parser loads (not a start-up compile, which the none variant cannot do).
RUN python -c "from serve import fastparse as f; \
assert f.PARSER is not None and f.PARSER.path == f.PREBUILT, 'no prebuilt parser'"

LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
      com.amazonaws.sagemaker.capabilities.multi-models=true \
      org.opencontainers.image.title=rtb-inference \
      org.opencontainers.image.description="Low-latency SageMaker inference for RTB XGBoost models" \
      org.opencontainers.image.licenses=Apache-2.0
EXPOSE 8080
WORKDIR /opt/rtb
# Exec form: `serve` (SageMaker's argument) reaches the server as PID 1, and so does SIGTERM.
ENTRYPOINT ["/opt/venv/bin/serve"]
CMD ["serve"]
