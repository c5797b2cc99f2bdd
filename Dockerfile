# Usher's container image: a build stage and a slim Debian 12 runtime.
#
#   podman build -t usher .          (or docker build; `make image` builds from a local base)
#
# The runtime runs as the unprivileged user `usher` (uid 10001), writes nothing outside
# /var/lib/usher (a volume; only SQLite needs it) and /tmp, so it runs with a read-only
# root file system (`--read-only`, compose.yaml's `read_only: true`).
# BASE is any Debian 12 image; `make image` passes one made by mmdebstrap.
ARG BASE=docker.io/library/debian:12-slim

FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends \
        build-essential pkg-config meson ninja-build \
        libulfius-dev libmicrohttpd-dev libjansson-dev libcurl4-gnutls-dev nettle-dev libgnutls28-dev \
        libiddawc-dev librhonabwy-dev libpq-dev libsqlite3-dev libhiredis-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY meson.build meson_options.txt README.md ./
COPY docs/ docs/
COPY src/ src/
COPY migrations/ migrations/
COPY templates/ templates/
COPY static/ static/
COPY deploy/ deploy/
COPY devstack/catalog.json devstack/catalog.json
RUN meson setup /build --prefix=/usr --buildtype=release -Dtests=false -Dsystemd_units=false \
    && ninja -C /build \
    && DESTDIR=/install meson install -C /build --no-rebuild

FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends \
        ca-certificates libulfius2.7 libmicrohttpd12 libjansson4 libcurl3-gnutls libnettle8 libgnutls30 \
        libpq5 libsqlite3-0 libhiredis0.14 zlib1g libiddawc1.1 librhonabwy1.1 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
    && groupadd --system --gid 10001 usher \
    && useradd --system --uid 10001 --gid usher --home-dir /var/lib/usher --no-create-home \
        --shell /usr/sbin/nologin usher \
    && install -d -o usher -g usher -m 0750 /var/lib/usher
COPY --from=build /install/ /

# No .env inside the image: configuration comes from the environment. SQLite (the default)
# lives in the volume; set DATABASE_URL=postgresql://... for PostgreSQL.
ENV BIND=0.0.0.0:8000 \
    DATABASE_URL=sqlite:////var/lib/usher/usher.sqlite3
WORKDIR /var/lib/usher
VOLUME ["/var/lib/usher"]
USER usher:usher
EXPOSE 8000
# bash's /dev/tcp: no HTTP client in the image. Healthy when /health/ answers 200.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${BIND##*:} && printf 'GET /health/ HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/bin/usher"]
CMD ["serve"]
