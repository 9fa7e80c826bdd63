#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the cloudburst pilot image: AlmaLinux 9 GenericCloud with
# HTCondor, the CVMFS client, cloud-init (already in the base), optionally
# a Mesos agent, and condor-config/50-cloudburst-pilot.conf. Everything
# node-specific arrives later in the user-data cloudburst renders.
#
# Needs: curl, sha256sum, qemu-img and virt-customize (libguestfs-tools).
# Usage: images/build-pilot-image.sh [OUTPUT.qcow2]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
out=${1:-$here/cloudburst-pilot.qcow2}
cache=${CLOUDBURST_IMAGE_CACHE:-$here/.cache}

# shellcheck source=inputs.env
. "$here/inputs.env"

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "build-pilot-image: $1 is required ($2)" >&2; exit 2; }
}
need curl "to fetch the base image"
need sha256sum "to check it"
need qemu-img "to copy it"
need virt-customize "apt-get install libguestfs-tools, or dnf install guestfs-tools"

mkdir -p "$cache"
base="$cache/$BASE_IMAGE"
lock="$here/pilot-image.lock"

echo "==> base image $BASE_IMAGE"
if [ ! -f "$base" ]; then
    curl -fL --retry 3 -o "$base.part" "$BASE_DIR_URL/$BASE_IMAGE"
    mv "$base.part" "$base"
fi

want=$BASE_SHA256
if [ -z "$want" ] && [ -f "$lock" ]; then
    want=$(sed -n 's/^BASE_SHA256=//p' "$lock")
fi
if [ -z "$want" ]; then
    # First build: trust the distribution's CHECKSUM file, then pin it.
    want=$(curl -fsL "$BASE_DIR_URL/CHECKSUM" | awk -v f="($BASE_IMAGE)" '$2 == f {print $4}')
    [ -n "$want" ] || { echo "build-pilot-image: $BASE_IMAGE is not in CHECKSUM" >&2; exit 1; }
    printf 'BASE_IMAGE=%s\nBASE_SHA256=%s\n' "$BASE_IMAGE" "$want" > "$lock"
    echo "    pinned in $lock (commit it)"
fi
got=$(sha256sum "$base" | awk '{print $1}')
if [ "$got" != "$want" ]; then
    echo "build-pilot-image: $base has SHA-256 $got, expected $want" >&2
    exit 1
fi

echo "==> customising a copy into $out"
qemu-img convert -O qcow2 "$base" "$out.part"
mesos_args=()
if [ -n "${MESOS_RPM:-}" ]; then
    mesos_args=(--upload "$MESOS_RPM:/tmp/mesos.rpm" --run-command "dnf install -y /tmp/mesos.rpm && rm -f /tmp/mesos.rpm")
fi
virt-customize -a "$out.part" \
    --run-command "dnf install -y $CONDOR_RELEASE_RPM $CVMFS_RELEASE_RPM" \
    --run-command "dnf install -y condor-$CONDOR_VERSION cvmfs-$CVMFS_VERSION iptables-nft" \
    "${mesos_args[@]}" \
    --mkdir /etc/condor/tokens.d \
    --chmod 0700:/etc/condor/tokens.d \
    --upload "$repo/condor-config/50-cloudburst-pilot.conf:/etc/condor/config.d/50-cloudburst-pilot.conf" \
    --run-command "systemctl disable condor.service" \
    --mkdir /etc/cloudburst \
    --upload "$here/inputs.env:/etc/cloudburst/image-inputs" \
    --run-command "dnf clean all && rm -rf /var/cache/dnf" \
    --selinux-relabel
mv "$out.part" "$out"
echo "==> $out"
echo "    upload it: openstack image create --disk-format qcow2 --file $out cloudburst-pilot"
echo "    or for EC2: convert to raw and import (aws ec2 import-image)."
