#!/usr/bin/env bash
# Re-pins the Dockerfile's base images: resolves the current digest of each BUILD_IMAGE /
# RUNTIME_IMAGE tag in docker/Dockerfile and rewrites the ARG line. Needs a registry client:
# `docker buildx imagetools` (Docker 20.10+) or `skopeo`. Review the diff, rebuild, run the
# suite, commit.
#
#   docker/pin-images.sh
set -euo pipefail

DOCKERFILE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/Dockerfile

digest_of() {
    if command -v docker >/dev/null && docker buildx version >/dev/null 2>&1; then
        docker buildx imagetools inspect "$1" | awk '/^Digest:/ {print $2; exit}'
    elif command -v skopeo >/dev/null; then
        # The manifest list's digest, as docker pull "$1" resolves it on any architecture.
        skopeo inspect --raw "docker://$1" | sha256sum | awk '{print "sha256:" $1}'
    else
        echo "pin-images: need docker buildx or skopeo" >&2
        return 1
    fi
}

for arg in BUILD_IMAGE RUNTIME_IMAGE; do
    current=$(sed -n "s/^ARG $arg=//p" "$DOCKERFILE")
    tag=${current%@*}
    digest=$(digest_of "$tag")
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "pin-images: no digest for $tag" >&2; exit 1; }
    sed -i "s|^ARG $arg=.*|ARG $arg=$tag@$digest|" "$DOCKERFILE"
    echo "$arg=$tag@$digest"
done
