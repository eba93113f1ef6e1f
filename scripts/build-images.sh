#!/usr/bin/env bash
# Build the fediops/debian-systemd:<release> base images with debootstrap + docker import.
# No image can be pulled here, so every base image starts from Debian's own packages.
# The mirror is read from this machine's apt sources; no package host is written into the repo.
set -euo pipefail
releases=("${@:-bookworm trixie}")
read -r -a releases <<<"${releases[*]}"

mirror() {
  local uri
  uri=$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  fi
  [ -n "$uri" ] || { echo "build-images: no Debian mirror found in this machine's apt sources" >&2; exit 1; }
  echo "${uri%/}"
}

MIRROR=$(mirror)
for rel in "${releases[@]}"; do
  image="fediops/debian-systemd:${rel}"
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "build-images: $image present"
    continue
  fi
  echo "build-images: building $image"
  root=$(mktemp -d "/var/tmp/fediops-rootfs-${rel}.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,procps,iproute2,ca-certificates \
    "$rel" "$root" "$MIRROR" >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; exit 1; }
  # Keep apt inside the containers pointed at the same mirror the machine uses.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: ${MIRROR}
Suites: ${rel} ${rel}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # Units that make no sense in a container only slow boot down.
  for unit in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
              getty.target console-getty.service systemd-remount-fs.service \
              sys-kernel-debug.mount sys-kernel-tracing.mount systemd-firstboot.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/90fediops-norecommends"
  : >"$root/etc/machine-id"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import \
    -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' \
    - "$image" >/dev/null
  rm -rf "$root" "$root.log"
  trap - EXIT
  echo "build-images: $image built"
done
