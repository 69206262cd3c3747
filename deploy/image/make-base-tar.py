#!/usr/bin/env python3
"""Writes a one-layer base image in `docker save` format from a root filesystem directory.

    make-base-tar.py ROOTFS OUT.tar [--env K=V ...]

The layer is the directory tree as-is (numeric owners from the tree, so prepare it as root); the image config
carries only the environment (PATH, JAVA_HOME): jib sets user, ports, entrypoint. Jib reads it with
-Djib.from.image=tar://OUT.tar, no registry and no container engine involved.
"""
import hashlib
import io
import json
import os
import sys
import tarfile


def add_tree(tar, root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        if rel != ".":
            tar.add(dirpath, arcname=rel, recursive=False, filter=fixed_time)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            tar.add(path, arcname=os.path.relpath(path, root), recursive=False, filter=fixed_time)


def fixed_time(info):
    info.mtime = 0  # reproducible layer digest
    return info


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    root, out = sys.argv[1], sys.argv[2]
    env = []
    args = sys.argv[3:]
    while args:
        if args[0] == "--env" and len(args) > 1:
            env.append(args[1])
            args = args[2:]
        else:
            sys.exit("unknown argument " + args[0])

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        add_tree(t, root)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()

    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "deploy/image/build-image.sh (jlinked JRE on a minimal root filesystem)"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id[len("sha256:"):] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": ["bazel-cache-base:local"], "Layers": [layer_name]}]

    with tarfile.open(out, mode="w") as t:
        for name, data in ((config_name, config_bytes), (layer_name, layer_bytes),
                           ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    print("%s: %d MiB layer %s" % (out, len(layer_bytes) >> 20, diff_id))


if __name__ == "__main__":
    main()
