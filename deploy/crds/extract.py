"""Writes the offline schemas deploy/check.py validates custom resources with.

CloudNativePG and its Barman Cloud plugin publish their CRDs with each
release; this keeps each served version's openAPIV3Schema without the
descriptions (a tenth of the size), one JSON file per operator release:

    python3 deploy/crds/extract.py cloudnative-pg-1.30.0.json <crd.yaml>...

Run it on the CRDs of the release the README's install order pins
(config/crd/bases/ at that release's tag) when that pin moves.
"""

import json
import pathlib
import sys

import yaml


def without_descriptions(node):
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


def main(out, crds):
    schemas = {}
    for path in crds:
        crd = yaml.safe_load(pathlib.Path(path).read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                key = f"{group}/{version['name']}/{kind}"
                schemas[key] = without_descriptions(version["schema"]["openAPIV3Schema"])
    target = pathlib.Path(__file__).resolve().parent / out
    target.write_text(json.dumps(schemas, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"{target}: {', '.join(sorted(schemas))}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
