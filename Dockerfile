# backupd container image: a build stage with the -dev packages, and a slim
# runtime stage with only the shared libraries. The package lists come from
# scripts/deps.sh so they never drift from what CI installs.
# Not built on the development machines (no Docker engine there).
FROM debian:12 AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh --build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make clean && make all && make install PREFIX=/usr/local DESTDIR=/out

FROM debian:12-slim AS runtime
COPY scripts/deps.sh /tmp/deps.sh
RUN /tmp/deps.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/deps.sh \
 && useradd --system --uid 10001 --home-dir /var/lib/backupd --create-home backupd \
 && install -d -o backupd -g backupd -m 0700 /var/lib/backupd /run/backupd \
 && install -d -m 0755 /etc/backupd
COPY --from=build /out/usr/local/ /usr/local/
USER backupd
# Mount the config (and password files, mode 0600) at /etc/backupd/.
VOLUME ["/var/lib/backupd", "/etc/backupd"]
ENV BACKUPD_CONFIG=/etc/backupd/backupd.conf
EXPOSE 9590
ENTRYPOINT ["/usr/local/bin/backupd"]
CMD ["-c", "/etc/backupd/backupd.conf"]
