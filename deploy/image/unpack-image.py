#!/usr/bin/env python3
"""Unpacks an image tar (OCI layout, as jib writes with <format>OCI</format>, or `docker save` format) into a
root filesystem directory, applying the layers in order, and writes the image's run settings next to it.

    unpack-image.py IMAGE.tar ROOTFS            -> ROOTFS/ and ROOTFS.config.json (the image config)

Used by run-image.sh to run the image with chroot where no container engine exists.
"""
import io
import json
import os
import shutil
import sys
import tarfile


def blob(tar, digest):
    algo, hexd = digest.split(":", 1)
    return tar.extractfile("blobs/%s/%s" % (algo, hexd)).read()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    image, root = sys.argv[1], sys.argv[2]
    with tarfile.open(image) as tar:
        names = set(tar.getnames())
        if "index.json" in names:
            index = json.loads(tar.extractfile("index.json").read())
            manifest = json.loads(blob(tar, index["manifests"][0]["digest"]))
            config = json.loads(blob(tar, manifest["config"]["digest"]))
            layers = [blob(tar, layer["digest"]) for layer in manifest["layers"]]
        else:
            manifest = json.loads(tar.extractfile("manifest.json").read())[0]
            config = json.loads(tar.extractfile(manifest["Config"]).read())
            layers = [tar.extractfile(name).read() for name in manifest["Layers"]]
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    for data in layers:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as layer:
            for member in layer.getmembers():
                base = os.path.basename(member.name)
                if base.startswith(".wh."):  # whiteout: delete what a lower layer put there
                    victim = os.path.join(root, os.path.dirname(member.name), base[len(".wh."):])
                    if os.path.isdir(victim) and not os.path.islink(victim):
                        shutil.rmtree(victim)
                    elif os.path.lexists(victim):
                        os.remove(victim)
                    continue
                target = os.path.join(root, member.name)
                if os.path.lexists(target) and not (member.isdir() and os.path.isdir(target)):
                    os.remove(target)
                layer.extract(member, root, numeric_owner=True, filter="fully_trusted")
    with open(root.rstrip("/") + ".config.json", "w") as f:
        json.dump(config, f, indent=1)
    c = config.get("config", {})
    print("unpacked %d layers into %s; user %s, entrypoint %s, cmd %s"
          % (len(layers), root, c.get("User"), c.get("Entrypoint"), c.get("Cmd")))


if __name__ == "__main__":
    main()
