"""Offline checks of the deployment files, run by `cargo xtask test`.

- every kustomize overlay under k8s/overlays is rendered (kubectl kustomize)
  and each object validated against the Kubernetes JSON schemas
  (kubernetes-validate, strict); custom resources without an offline schema
  (CloudNativePG) are listed as skipped;
- each overlay's network is closed by default (a default-deny policy, DNS
  to the cluster's DNS and node-local DNS, every Deployment and NATS under
  a policy of its own) and its public Ingress exposes no Swagger UI, OpenAPI
  document, health or operators' endpoint; PostgreSQL has resources and, in
  prod, instances required on different nodes;
- k8s/nats/values.yaml parses;
- deploy/compose.yaml is validated against the Compose specification
  (compose-spec), after YAML merge keys are expanded as Compose does;
- deploy/Dockerfile is linted with hadolint.
"""

import json
import os
import pathlib
import subprocess
import sys

import compose_spec
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.32.0"
# API groups whose schemas are not bundled with kubernetes-validate.
CUSTOM_GROUPS = ("postgresql.cnpg.io/",)

failures = []


def check_database_urls(overlay, name, doc):
    """Every DATABASE_URL verifies the server against the cluster's CA."""
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        for env in container.get("env", []):
            if env.get("name") == "DATABASE_URL":
                url = env.get("value", "")
                if "sslmode=verify-full" not in url or "sslrootcert=" not in url:
                    failures.append(f"k8s/overlays/{overlay}: {name}/{container['name']}: DATABASE_URL without "
                                    f"sslmode=verify-full and sslrootcert: {url}")


CALENDAR_READERS = ("intake", "medical-aid", "education-aid", "housing-aid", "temporary-aid")


def check_holiday_calendars(overlay, name, doc):
    """Intake and the departments read further holiday arrangements from
    one mounted ConfigMap, so that both count the same time limits."""
    if doc.get("kind") != "Deployment" or doc["metadata"]["name"] not in CALENDAR_READERS:
        return
    spec = doc["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    container = next(c for c in spec["containers"] if c["name"] == doc["metadata"]["name"])
    mounted = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/etc/onedoor/calendar"]
    if not mounted or "configMap" not in volumes.get(mounted[0]["name"], {}):
        failures.append(f"k8s/overlays/{overlay}: {name}: no holiday-calendar ConfigMap at /etc/onedoor/calendar")


def check_network(overlay, docs):
    """The namespace denies by default; pods get DNS and their own allows; the
    public Ingress carries the staff's paths only."""
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    default_deny = [p for p in policies if p["spec"].get("podSelector") == {}
                    and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                    and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    if not default_deny:
        failures.append(f"k8s/overlays/{overlay}: no default-deny NetworkPolicy")
    dns_ports = {53}
    dns = [p for p in policies if p["spec"].get("podSelector") == {} and any(
        {port.get("port") for port in rule.get("ports", [])} >= dns_ports
        and any("ipBlock" in peer for peer in rule.get("to", []))
        and any("namespaceSelector" in peer for peer in rule.get("to", []))
        for rule in p["spec"].get("egress", []))]
    if not dns:
        failures.append(f"k8s/overlays/{overlay}: no DNS allow for every pod (cluster DNS and node-local DNS)")
    selected = {tuple(sorted(p["spec"].get("podSelector", {}).get("matchLabels", {}).items())) for p in policies}
    names = [d["metadata"]["name"] for d in docs if d.get("kind") == "Deployment"] + ["nats"]
    for name in names:
        if (("app.kubernetes.io/name", name),) not in selected:
            failures.append(f"k8s/overlays/{overlay}: no NetworkPolicy of its own for {name}")
    for cluster in (d["metadata"]["name"] for d in docs if d.get("kind") == "Cluster"):
        if (("cnpg.io/cluster", cluster),) not in selected:
            failures.append(f"k8s/overlays/{overlay}: no NetworkPolicy for the PostgreSQL cluster {cluster}")
    hidden = ("/swagger-ui", "/api-docs", "/health", "/api/v1/admin")
    for ingress in (d for d in docs if d.get("kind") == "Ingress"):
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]["name"]
                p = path["path"]
                if backend != "workbench" and (p == "/" or p.startswith(hidden)):
                    failures.append(f"k8s/overlays/{overlay}: Ingress {ingress['metadata']['name']} exposes {p} "
                                    f"of {backend} (Swagger UI, health and operators' endpoints stay inside)")


def check_postgres(overlay, docs):
    """PostgreSQL pods have resources; in prod, instances never share a node."""
    for cluster in (d for d in docs if d.get("kind") == "Cluster"):
        spec = cluster["spec"]
        resources = spec.get("resources", {})
        if not resources.get("requests") or not resources.get("limits"):
            failures.append(f"k8s/overlays/{overlay}: Cluster {cluster['metadata']['name']} has no resource requests "
                            "and limits")
        if overlay == "prod" and spec.get("affinity", {}).get("podAntiAffinityType") != "required":
            failures.append(f"k8s/overlays/{overlay}: Cluster {cluster['metadata']['name']} does not require its "
                            "instances on different nodes")


def check_overlays():
    for overlay in sorted((ROOT / "k8s" / "overlays").iterdir()):
        rendered = subprocess.run(
            ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True
        )
        if rendered.returncode != 0:
            failures.append(f"k8s/overlays/{overlay.name}: kustomize failed: {rendered.stderr.strip()}")
            continue
        validated, skipped = 0, []
        docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        check_network(overlay.name, docs)
        check_postgres(overlay.name, docs)
        for doc in docs:
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            if doc.get("apiVersion", "").startswith(CUSTOM_GROUPS):
                skipped.append(name)
                continue
            check_database_urls(overlay.name, name, doc)
            check_holiday_calendars(overlay.name, name, doc)
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
                validated += 1
            except Exception as e:  # noqa: BLE001 - every kind of invalidity is a failure
                failures.append(f"k8s/overlays/{overlay.name}: {name}: {e}")
        print(f"k8s/overlays/{overlay.name}: {validated} objects valid for Kubernetes {KUBERNETES_VERSION}; "
              f"skipped (custom resources, no offline schema): {', '.join(skipped) or 'none'}")


def gib(size):
    """`16Gi` as GiB."""
    units = {"Gi": 1, "Mi": 1 / 1024, "Ti": 1024}
    for unit, factor in units.items():
        if str(size).endswith(unit):
            return float(str(size)[: -len(unit)]) * factor
    return float(size) / 1024**3


def check_stream_budget():
    """Every stream's size limit together fits JetStream's store, which fits its volume."""
    common = next(d for d in yaml.safe_load_all((ROOT / "k8s/base/common.yaml").read_text())
                  if d and d.get("kind") == "ConfigMap")["data"]
    # Intake and each department declare one event stream; the workbench none.
    services = len([p for p in (ROOT / "k8s/base/services").glob("*.yaml") if p.stem != "workbench"])
    streams = services * int(common["ONEDOOR_STREAM_MAX_BYTES"]) + int(common["ONEDOOR_DEAD_LETTER_MAX_BYTES"])
    for key in ("ONEDOOR_STREAM_MAX_AGE_DAYS", "ONEDOOR_DEAD_LETTER_MAX_AGE_DAYS"):
        if int(common.get(key, 0)) <= 0:
            failures.append(f"k8s/base/common.yaml: {key} must limit the streams")
    store = yaml.safe_load((ROOT / "k8s/nats/values.yaml").read_text())["config"]["jetstream"]["fileStore"]
    if "maxSize" not in store:
        failures.append("k8s/nats/values.yaml: JetStream's fileStore has no maxSize")
        return
    if streams / 1024**3 > gib(store["maxSize"]) or gib(store["maxSize"]) >= gib(store["pvc"]["size"]):
        failures.append(f"streams ({streams / 1024**3:.1f} GiB) must fit JetStream's store ({store['maxSize']}), "
                        f"which must stay below its volume ({store['pvc']['size']})")
    print(f"streams: {streams / 1024**3:.1f} GiB of limits within JetStream's {store['maxSize']} "
          f"on a {store['pvc']['size']} volume")


def check_nats_values():
    values = yaml.safe_load((ROOT / "k8s" / "nats" / "values.yaml").read_text())
    sync = values.get("config", {}).get("merge", {}).get("jetstream", {}).get("sync_interval")
    if sync != "always" or values["config"]["cluster"]["replicas"] != 3:
        failures.append("k8s/nats/values.yaml: want a cluster of 3 with sync_interval: always")
    else:
        print("k8s/nats/values.yaml: JetStream cluster of 3, sync_interval: always")


def check_compose():
    expanded = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    try:
        spec = compose_spec.PyCompose.from_json(json.dumps(expanded))
        spec.validate()
        print(f"deploy/compose.yaml: valid Compose ({', '.join(spec.service_names())})")
    except Exception as e:  # noqa: BLE001
        failures.append(f"deploy/compose.yaml: {e}")


def check_dockerfile(hadolint):
    lint = subprocess.run([hadolint, str(ROOT / "deploy" / "Dockerfile")], capture_output=True, text=True)
    if lint.returncode != 0:
        failures.append(f"deploy/Dockerfile: hadolint: {lint.stdout.strip()} {lint.stderr.strip()}")
    else:
        print("deploy/Dockerfile: hadolint clean")


if __name__ == "__main__":
    check_overlays()
    check_nats_values()
    check_stream_budget()
    check_compose()
    check_dockerfile(os.environ.get("HADOLINT", "hadolint"))
    for f in failures:
        print(f"FAILED {f}", file=sys.stderr)
    sys.exit(1 if failures else 0)
