"""Offline checks of the deployment files, run by `cargo xtask test`.

- every kustomize overlay under k8s/overlays is rendered (kubectl kustomize)
  and each object validated strictly: Kubernetes' own kinds against the
  Kubernetes JSON schemas (kubernetes-validate), CloudNativePG's and the
  Barman Cloud plugin's against the CRD schemas of the pinned releases
  (deploy/crds/);
- the namespace enforces the `restricted` Pod Security Standard;
- the services reach PostgreSQL through PgBouncer with sslmode=verify-full
  (migrations directly), and every replica's pool at the HPA's maximum fits
  PgBouncer's clients, whose server pools fit max_connections;
- each overlay's network is closed by default (a default-deny policy, DNS
  to the cluster's DNS and node-local DNS, every Deployment and NATS under
  a policy of its own) and its public Ingress exposes no Swagger UI, OpenAPI
  document, health or operators' endpoint; PostgreSQL has resources and, in
  prod, instances required on different nodes;
- the vendored NATS chart (k8s/nats/chart) is rendered with
  k8s/nats/values.yaml (Helm's own Go code, helm-python-sdk) and validated
  the same way;
- every image of both is pulled from the one private registry and pinned by
  digest (OneDoor's own image is pinned when a release is pushed);
- deploy/compose.yaml is validated against the Compose specification
  (compose-spec), after YAML merge keys are expanded as Compose does;
- the monitoring (deploy/monitoring): the alert rules pass `promtool check
  rules` and their unit tests `promtool test rules`, compose's Prometheus
  configuration `promtool check config`; the k8s PrometheusRule carries the
  same groups; every metric the rules and the Grafana dashboard query is one
  the services expose (libs/metrics); the ServiceMonitor and PrometheusRule
  are checked against the fields of the Prometheus Operator's
  monitoring.coreos.com/v1 that they use (no CRD schema is vendored for it);
- compose's edge: only the gateway publishes ports beyond the machine's
  loopback, each of them a TLS server of deploy/gateway/nginx.conf (which
  `nginx -t`, Debian's nginx, accepts with a throwaway certificate) in front
  of the workbench, Keycloak and every service's API; the Keycloak realm
  (deploy/keycloak/onedoor-realm.json) agrees with compose on the issuer,
  the audience, the workbench's client and address, and its placeholders
  are all set;
- deploy/Dockerfile is linted with hadolint, the shell scripts
  (deploy/restore-drill.sh, .ci/run) with shellcheck.

`python3 deploy/check.py images` (what `cargo xtask images` runs) prints
every image to mirror into the registry instead.
"""

import functools
import json
import os
import pathlib
import re
import subprocess
import sys

import compose_spec
import helm_python
import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.32.0"
# The CRD schemas of the operator releases the README's install order pins.
CRD_SCHEMAS = ("cloudnative-pg-1.30.0.json", "plugin-barman-cloud-0.14.0.json")

failures = []


def strict(schema):
    """A CRD's structural schema as a JSON Schema that, like `kubectl apply
    --validate=strict`, refuses fields it does not declare."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def custom_resource_schemas():
    schemas = {}
    for name in CRD_SCHEMAS:
        for key, schema in json.loads((ROOT / "deploy" / "crds" / name).read_text()).items():
            schema = strict(schema)
            # metadata is Kubernetes' ObjectMeta, validated by the API server.
            schema["properties"]["metadata"] = {"type": "object"}
            schemas[key] = jsonschema.Draft7Validator(schema)
    return schemas


POOLER = "onedoor-pg-pooler-rw"
KUSTOMIZATION = yaml.safe_load((ROOT / "k8s/base/kustomization.yaml").read_text())
NATS_VALUES = yaml.safe_load((ROOT / "k8s/nats/values.yaml").read_text())
# As `helm install --set-file 'configMap.merge.data.auth\.conf=deploy/nats/auth.conf'`.
NATS_VALUES.setdefault("configMap", {}).setdefault("merge", {}).setdefault("data", {})["auth.conf"] = (
    ROOT / "deploy/nats/auth.conf"
).read_text()
# OneDoor's own image; its registry is the one every image comes from.
OWN = next(i for i in KUSTOMIZATION["images"] if i["name"] == "onedoor")
OWN_IMAGE = OWN["newName"]
REGISTRY = OWN_IMAGE.split("/", 1)[0]


def _obj(properties, required=()):
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_SELECTOR = _obj({"matchLabels": _LABELS, "matchExpressions": {"type": "array", "items": _obj(
    {"key": {"type": "string"}, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
     "values": {"type": "array", "items": {"type": "string"}}}, ["key", "operator"])}})
_META = {"type": "object"}
# The fields of the Prometheus Operator's monitoring.coreos.com/v1 that
# k8s/components/monitoring uses, with their types (a subset: an unknown or
# misspelt field fails as it would under `kubectl apply --validate=strict`).
MONITORING_SCHEMAS = {
    "monitoring.coreos.com/v1/ServiceMonitor": jsonschema.Draft7Validator(_obj({
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": _META,
        "spec": _obj({
            "selector": _SELECTOR,
            "jobLabel": {"type": "string"},
            "endpoints": {"type": "array", "minItems": 1, "items": _obj({
                "port": {"type": "string"}, "path": {"type": "string", "pattern": "^/"},
                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                "relabelings": {"type": "array", "items": _obj({
                    "sourceLabels": {"type": "array", "items": {"type": "string"}},
                    "targetLabel": {"type": "string"}, "replacement": {"type": "string"},
                    "action": {"type": "string"}, "regex": {"type": "string"}})}}, ["port"])},
        }, ["selector", "endpoints"]),
    }, ["apiVersion", "kind", "metadata", "spec"])),
    "monitoring.coreos.com/v1/PrometheusRule": jsonschema.Draft7Validator(_obj({
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": _META,
        "spec": _obj({"groups": {"type": "array", "items": _obj({
            "name": {"type": "string"}, "interval": {"type": "string"},
            "rules": {"type": "array", "items": _obj({
                "alert": {"type": "string"}, "record": {"type": "string"}, "expr": {"type": "string"},
                "for": {"type": "string"}, "labels": _LABELS, "annotations": _LABELS}, ["expr"])}},
            ["name", "rules"])}}, ["groups"]),
    }, ["apiVersion", "kind", "metadata", "spec"])),
}


def kustomized_image(name):
    """What kustomize's `images` in k8s/base makes of the image `name`."""
    image = next(i for i in KUSTOMIZATION["images"] if i["name"] == name)
    return f"{image['newName']}:{image['newTag']}" + (f"@{image['digest']}" if "digest" in image else "")


def pod_spec(doc):
    """The pod fields of an object that runs pods (CloudNativePG's Cluster
    carries them in its own spec, a Pooler in its template), else None."""
    kind, spec = doc.get("kind"), doc.get("spec", {})
    if kind in ("Pod", "Cluster"):
        return spec
    if kind == "Pooler":
        return spec["template"]["spec"]
    return spec.get("template", {}).get("spec")


def containers(pod):
    return (pod or {}).get("initContainers", []) + (pod or {}).get("containers", [])


def validate(where, name, doc):
    """Validates `doc` strictly: a custom resource against its CRD schema,
    anything else against Kubernetes' own. Which schema it met, or None."""
    key = f"{doc.get('apiVersion')}/{doc.get('kind')}"
    schema = custom_resource_schemas().get(key) or MONITORING_SCHEMAS.get(key)
    if schema is not None:
        errors = sorted(schema.iter_errors(doc), key=lambda e: list(e.path))
        for e in errors:
            failures.append(f"{where}: {name}: {'/'.join(map(str, e.path))}: {e.message}")
        return None if errors else "custom"
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        return "kubernetes"
    except Exception as e:  # noqa: BLE001 - every kind of invalidity is a failure
        failures.append(f"{where}: {name}: {e}")
        return None


def images_of(doc):
    """Every image a rendered object runs."""
    if doc.get("kind") == "Cluster":
        yield doc["spec"].get("imageName", "(the operator's default)")
    if doc.get("kind") == "Pooler":
        yield doc["spec"]["pgbouncer"].get("image", "(the operator's default)")
    for container in containers(pod_spec(doc)):
        if "image" in container:
            yield container["image"]


def check_images(where, docs):
    """Every image from the private registry, pinned by digest, pulled with
    the registry's secret."""
    for doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        for image in images_of(doc):
            if not image.startswith(REGISTRY + "/"):
                failures.append(f"{where}: {name}: {image} is not from the registry {REGISTRY}")
            elif "@sha256:" not in image and not image.startswith(OWN_IMAGE + ":"):
                failures.append(f"{where}: {name}: {image} is not pinned by digest")
        pod = pod_spec(doc)
        if pod is not None and not pod.get("imagePullSecrets"):
            failures.append(f"{where}: {name}: no imagePullSecrets for {REGISTRY}")
    own = sorted({i for d in docs for i in images_of(d) if i.startswith(OWN_IMAGE + ":") and "@" not in i})
    if own:
        print(f"{where}: OneDoor's own image {', '.join(own)}: pinned by digest at release "
              "(cargo xtask images --release sha256:...)")


def database_urls(doc):
    """(container, is init container, DATABASE_URL) of a workload."""
    pod = pod_spec(doc) or {}
    for init, listed in ((True, pod.get("initContainers", [])), (False, pod.get("containers", []))):
        for container in listed:
            for env in container.get("env", []):
                if env.get("name") == "DATABASE_URL":
                    yield container["name"], init, env.get("value", "")


def check_database_urls(overlay, name, doc):
    """Every DATABASE_URL verifies the server against the cluster's CA; the
    services go through PgBouncer, their migrations (init containers) straight
    to the primary."""
    for container, init, url in database_urls(doc):
        if "sslmode=verify-full" not in url or "sslrootcert=" not in url:
            failures.append(f"k8s/overlays/{overlay}: {name}/{container}: DATABASE_URL without "
                            f"sslmode=verify-full and sslrootcert: {url}")
        host = url.split("@", 1)[-1].split(":", 1)[0].split("/", 1)[0]
        want = "onedoor-pg-rw" if init else POOLER
        if host != want:
            failures.append(f"k8s/overlays/{overlay}: {name}/{container}: DATABASE_URL to {host}, want {want}")


# What a backend service refuses to start without where ONEDOOR_ENV=production
# (libs/service-host): each from a secret, never a value in the manifests.
PRODUCTION_SECRETS = ("ONEDOOR_AUDIT_KEY", "ONEDOOR_KEK", "ONEDOOR_NATS_NKEY")


def check_production_secrets(overlay, name, doc):
    """Every backend service (a container with a broker user) has the keys
    production requires, each from a secret."""
    for container in (pod_spec(doc) or {}).get("containers", []):
        env = {e.get("name"): e for e in container.get("env", [])}
        if "ONEDOOR_NATS_NKEY" not in env:
            continue
        for wanted in PRODUCTION_SECRETS:
            if "secretKeyRef" not in env.get(wanted, {}).get("valueFrom", {}):
                failures.append(f"k8s/overlays/{overlay}: {name}/{container['name']}: {wanted} "
                                "not from a secret (the service refuses to start in production without it)")
    # The upgrade step of `--migrate-only` seals what an earlier release
    # stored in the clear (ADR 0018): the init container needs the KEK.
    for init in (pod_spec(doc) or {}).get("initContainers", []):
        if "--migrate-only" not in init.get("command", []) + init.get("args", []):
            continue
        env = {e.get("name"): e for e in init.get("env", [])}
        if "secretKeyRef" not in env.get("ONEDOOR_KEK", {}).get("valueFrom", {}):
            failures.append(f"k8s/overlays/{overlay}: {name}/{init['name']}: ONEDOOR_KEK not from a secret "
                            "(--migrate-only refuses to run in production without it)")


def check_connection_budget(overlay, docs):
    """The most connections the services can open (every HPA at its maximum,
    every replica's two pools full) fit one PgBouncer's max_client_conn (a
    node lost sends all to the others), and PgBouncer's server connections
    (per database, per instance) with room for the direct ones fit
    PostgreSQL's max_connections."""
    common = next(d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "onedoor-common")
    per_replica = int(common["data"]["DATABASE_MAX_CONNECTIONS"]) + int(common["data"]["DATABASE_WORK_CONNECTIONS"])
    if common["data"].get("ONEDOOR_MIGRATE_ON_START") != "false":
        failures.append(f"k8s/overlays/{overlay}: ONEDOOR_MIGRATE_ON_START must be false behind PgBouncer")
    hpa_max = {d["spec"]["scaleTargetRef"]["name"]: d["spec"]["maxReplicas"]
               for d in docs if d.get("kind") == "HorizontalPodAutoscaler"}
    clients = sum(hpa_max[d["metadata"]["name"]] * per_replica for d in docs
                  if d.get("kind") == "Deployment" and any(not init for _, init, _ in database_urls(d)))
    pooler = next((d for d in docs if d.get("kind") == "Pooler" and d["metadata"]["name"] == POOLER), None)
    cluster = next(d for d in docs if d.get("kind") == "Cluster")
    if pooler is None:
        failures.append(f"k8s/overlays/{overlay}: no Pooler {POOLER}")
        return
    bouncer = pooler["spec"]["pgbouncer"]
    params = bouncer.get("parameters", {})
    if bouncer.get("poolMode") != "transaction":
        failures.append(f"k8s/overlays/{overlay}: Pooler {POOLER} is not in transaction mode")
    databases = len([d for d in docs if d.get("kind") == "Database"])
    server = (pooler["spec"]["instances"] * databases
              * (int(params["default_pool_size"]) + int(params.get("reserve_pool_size", 0))))
    direct = 20 + 5 * int(cluster["spec"]["instances"])  # migrations, operator, replication, backups
    max_connections = int(cluster["spec"]["postgresql"]["parameters"].get("max_connections", 100))
    if clients > int(params["max_client_conn"]):
        failures.append(f"k8s/overlays/{overlay}: the services may open {clients} connections, "
                        f"PgBouncer takes {params['max_client_conn']}")
    if server + direct > max_connections:
        failures.append(f"k8s/overlays/{overlay}: PgBouncer's {server} server connections and {direct} direct "
                        f"exceed max_connections {max_connections}")
    print(f"k8s/overlays/{overlay}: connections: services up to {clients} (PgBouncer max_client_conn "
          f"{params['max_client_conn']}); PostgreSQL {server} pooled + {direct} direct of {max_connections}")


def check_restricted(where, name, doc):
    """A workload's pods meet the `restricted` Pod Security Standard (the
    fields it checks): non-root, the runtime's seccomp profile, no privilege
    escalation, every capability dropped."""
    if doc.get("kind") not in ("Pod", "Deployment", "StatefulSet", "DaemonSet", "Job"):
        return
    pod = pod_spec(doc)
    pod_security = pod.get("securityContext", {})
    for container in containers(pod):
        security = container.get("securityContext", {})
        non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        seccomp = security.get("seccompProfile", pod_security.get("seccompProfile", {})).get("type")
        problems = [what for what, bad in (
            ("runAsNonRoot", non_root is not True),
            ("seccompProfile RuntimeDefault", seccomp not in ("RuntimeDefault", "Localhost")),
            ("allowPrivilegeEscalation: false", security.get("allowPrivilegeEscalation") is not False),
            ("capabilities drop ALL", "ALL" not in security.get("capabilities", {}).get("drop", [])),
        ) if bad]
        if problems:
            failures.append(f"{where}: {name}/{container['name']} is not restricted: {', '.join(problems)}")


def check_namespace(overlay, docs):
    """Pods in the namespace must meet the `restricted` Pod Security Standard."""
    for ns in (d for d in docs if d.get("kind") == "Namespace"):
        labels = ns["metadata"].get("labels", {})
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            failures.append(f"k8s/overlays/{overlay}: Namespace {ns['metadata']['name']} does not enforce the "
                            "restricted Pod Security Standard")


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
    for pooler in (d["metadata"]["name"] for d in docs if d.get("kind") == "Pooler"):
        if (("cnpg.io/poolerName", pooler),) not in selected:
            failures.append(f"k8s/overlays/{overlay}: no NetworkPolicy for the pooler {pooler}")
    hidden = ("/swagger-ui", "/api-docs", "/health", "/api/v1/admin", "/metrics")
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
        met = {"kubernetes": 0, "custom": 0, None: 0}
        docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        check_namespace(overlay.name, docs)
        check_network(overlay.name, docs)
        check_postgres(overlay.name, docs)
        check_connection_budget(overlay.name, docs)
        check_images(f"k8s/overlays/{overlay.name}", docs)
        for doc in docs:
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            check_database_urls(overlay.name, name, doc)
            check_production_secrets(overlay.name, name, doc)
            check_holiday_calendars(overlay.name, name, doc)
            check_restricted(f"k8s/overlays/{overlay.name}", name, doc)
            met[validate(f"k8s/overlays/{overlay.name}", name, doc)] += 1
        print(f"k8s/overlays/{overlay.name}: {met['kubernetes']} objects valid for Kubernetes {KUBERNETES_VERSION}, "
              f"{met['custom']} custom resources valid for {' and '.join(n.removesuffix('.json') for n in CRD_SCHEMAS)}"
              " (monitoring.coreos.com: the fields used)")


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
    store = NATS_VALUES["config"]["jetstream"]["fileStore"]
    if "maxSize" not in store:
        failures.append("k8s/nats/values.yaml: JetStream's fileStore has no maxSize")
        return
    if streams / 1024**3 > gib(store["maxSize"]) or gib(store["maxSize"]) >= gib(store["pvc"]["size"]):
        failures.append(f"streams ({streams / 1024**3:.1f} GiB) must fit JetStream's store ({store['maxSize']}), "
                        f"which must stay below its volume ({store['pvc']['size']})")
    print(f"streams: {streams / 1024**3:.1f} GiB of limits within JetStream's {store['maxSize']} "
          f"on a {store['pvc']['size']} volume")


def check_restore_drill():
    """The restore drill's manifests (deploy/restore-drill.sh fills in the
    target time and production's images, then applies them) are valid and
    meet the same rules as the overlays."""
    text = (ROOT / "deploy/restore/drill-cluster.yaml").read_text()
    for placeholder, value in (("TARGET_TIME", "2026-11-26 08:00:00+08"),
                               ("POSTGRES_IMAGE", kustomized_image("ghcr.io/cloudnative-pg/postgresql")),
                               ("ONEDOOR_IMAGE", kustomized_image("onedoor"))):
        text = text.replace(placeholder, value)
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        validate("deploy/restore", name, doc)
        check_restricted("deploy/restore", name, doc)
        for container, _, url in database_urls(doc):
            if "sslmode=verify-full" not in url or "@onedoor-pg-drill-rw:" not in url:
                failures.append(f"deploy/restore: {name}/{container}: DATABASE_URL must verify the drill's "
                                f"cluster: {url}")
    check_images("deploy/restore", docs)
    print(f"deploy/restore/drill-cluster.yaml: {len(docs)} objects valid")


def check_nats_chart():
    """The vendored chart rendered with the project's values, as `helm
    install` would (test hooks left out: they run only on `helm test`)."""
    with helm_python.Chart.load(str(ROOT / "k8s/nats/chart")) as chart:
        version = chart.version
        rendered = chart.render(NATS_VALUES, name="nats", namespace="onedoor")
    docs = [d for text in rendered.values() for d in yaml.safe_load_all(text) if d]
    docs = [d for d in docs if "helm.sh/hook" not in d["metadata"].get("annotations", {})]
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        check_restricted("k8s/nats", name, doc)
        validate("k8s/nats", name, doc)
    check_images("k8s/nats", docs)
    print(f"k8s/nats: chart {version} renders {len(docs)} objects, valid for Kubernetes {KUBERNETES_VERSION}")


def print_images():
    """What to mirror: each third-party image, upstream and in the registry."""
    print(f"{'upstream image':<75} {'digest':<72} registry")
    for image in KUSTOMIZATION["images"]:
        if image is not OWN:
            registry = image["name"].split("/")[0]
            upstream = image["name"] if "." in registry else f"docker.io/{image['name']}"
            print(f"{upstream + ':' + image['newTag']:<75} {image['digest']:<72} {image['newName']}:{image['newTag']}")
    for part in ("container", "reloader"):
        image = NATS_VALUES[part]["image"]
        upstream = f"docker.io/{image['repository']}:{image['tag']}"
        print(f"{upstream:<75} {image['digest']:<72} "
              f"{NATS_VALUES['global']['image']['registry']}/{image['repository']}:{image['tag']}")
    print(f"{'(built from deploy/Dockerfile)':<75} {OWN.get('digest', '(at release)'):<72} {OWN_IMAGE}:{OWN['newTag']}")


def check_nats_values():
    values = NATS_VALUES
    sync = values.get("config", {}).get("merge", {}).get("jetstream", {}).get("sync_interval")
    if sync != "always" or values["config"]["cluster"]["replicas"] != 3:
        failures.append("k8s/nats/values.yaml: want a cluster of 3 with sync_interval: always")
    else:
        print("k8s/nats/values.yaml: JetStream cluster of 3, sync_interval: always")


def exposed_metrics():
    """The series names the services expose: each name registered in
    libs/metrics (prefixed onedoor_), with a counter's _total and a
    histogram's _bucket, _sum and _count."""
    import re
    source = (ROOT / "libs/metrics/src/lib.rs").read_text()
    names = set()
    for metric, name in re.findall(r'(\w+): registered(?:_as)?\(\s*&mut r,\s*"([a-z_]+)"', source):
        kind = re.search(rf"pub {metric}: ([A-Za-z<>, ]+),", source).group(1)
        full = f"onedoor_{name}"
        if "Counter" in kind:
            names.add(f"{full}_total")
        elif "Histogram" in kind:
            names.update(f"{full}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(full)
    return names


def check_monitoring(promtool):
    """Alert rules and their unit tests through promtool, the k8s copy of the
    rules, and that every query asks for a metric the services expose."""
    import re
    folder = ROOT / "deploy" / "monitoring"
    for args in (["check", "rules", "alerts.yaml"], ["test", "rules", "alerts.test.yaml"],
                 ["check", "config", "prometheus.yml"]):
        run = subprocess.run([promtool, *args], cwd=folder, capture_output=True, text=True)
        if run.returncode != 0:
            failures.append(f"deploy/monitoring: promtool {' '.join(args)}: {run.stdout.strip()} {run.stderr.strip()}")
    alerts = yaml.safe_load((folder / "alerts.yaml").read_text())
    rule = yaml.safe_load((ROOT / "k8s/components/monitoring/prometheusrule.yaml").read_text())
    if rule["spec"]["groups"] != alerts["groups"]:
        failures.append("k8s/components/monitoring/prometheusrule.yaml: its groups differ from deploy/monitoring/alerts.yaml")
    dashboard = json.loads((folder / "grafana/onedoor.json").read_text())
    queries = [r["expr"] for r in alerts["groups"][0]["rules"]]
    queries += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exposed = exposed_metrics()
    for query in queries:
        for metric in set(re.findall(r"\bonedoor_[a-z_]+", query)):
            if metric not in exposed:
                failures.append(f"deploy/monitoring: {metric} is queried but no service exposes it: {query.strip()}")
    print(f"deploy/monitoring: {len(alerts['groups'][0]['rules'])} alert rules pass promtool and their unit tests; "
          f"{len(dashboard['panels'])} dashboard panels; every query asks for one of {len(exposed)} exposed series")


def check_compose():
    text = (ROOT / "deploy" / "compose.yaml").read_text()
    # No secret in the repository: every password, key and secret comes from
    # deploy/.env (deploy/compose-env.sh), required, never defaulted.
    defaulted = re.findall(r"\$\{(\w*(?:PASSWORD|SECRET|KEY|USER)\w*):?-", text)
    literal = re.findall(r"://[\w.-]+:[\w.-]+@", text)
    literal += re.findall(r"PASSWORD '[^']*'", (ROOT / "deploy" / "postgres" / "init.sql").read_text())
    if defaulted or literal:
        failures.append(f"deploy/compose.yaml: secrets written in the repository: {defaulted + literal}")
    expanded = yaml.safe_load(text)
    try:
        spec = compose_spec.PyCompose.from_json(json.dumps(expanded))
        spec.validate()
        print(f"deploy/compose.yaml: valid Compose ({', '.join(spec.service_names())})")
    except Exception as e:  # noqa: BLE001
        failures.append(f"deploy/compose.yaml: {e}")


def compose_services():
    return yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]


def check_compose_edge(nginx):
    """Only the TLS gateway is reachable from outside the machine, and it
    fronts the workbench, Keycloak and every API."""
    import tempfile
    services = compose_services()
    conf = (ROOT / "deploy" / "gateway" / "nginx.conf").read_text()
    for name, service in services.items():
        for port in service.get("ports", []):
            if name != "gateway" and not str(port).startswith("127.0.0.1:"):
                failures.append(f"deploy/compose.yaml: {name} publishes {port} beyond the loopback (only the gateway may)")
    listens = set(re.findall(r"^\s*listen (\d+)( ssl)?(?: http2)?;", conf, re.M))
    if any(not ssl for _, ssl in listens):
        failures.append(f"deploy/gateway/nginx.conf: a server listens without TLS: {sorted(listens)}")
    published = {str(p).split(":")[-1] for p in services["gateway"]["ports"]}
    if published != {port for port, _ in listens}:
        failures.append(f"deploy/compose.yaml: the gateway publishes {sorted(published)}, nginx listens on {sorted(listens)}")
    upstreams = set(re.findall(r"http://([a-z-]+):(\d+)", conf))
    fronted = {(name, s["environment"][var]) for name, s in services.items()
               for var in s.get("environment", {}) if var.endswith("_PORT") and var != "KC_HTTP_PORT"}
    fronted.add(("keycloak", "8080"))
    if fronted - upstreams:
        failures.append(f"deploy/gateway/nginx.conf: no TLS door to {sorted(fronted - upstreams)}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = pathlib.Path(scratch)
        (folder / "tls").mkdir()
        (folder / "nginx.conf").write_text(conf)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=onedoor.localhost", "-keyout", str(folder / "tls/gateway.key"),
                        "-out", str(folder / "tls/gateway.pem")], check=True, capture_output=True)
        test = subprocess.run([nginx, "-t", "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", "/dev/stderr"],
                              capture_output=True, text=True)
        if test.returncode != 0:
            failures.append(f"deploy/gateway/nginx.conf: nginx -t: {test.stderr.strip()}")
        else:
            print(f"deploy/gateway/nginx.conf: nginx -t accepts it; TLS on {sorted(published)}, "
                  f"the only ports published beyond the loopback")


def check_realm():
    """The compose realm issues the tokens the services are told to accept,
    to the workbench compose configures."""
    services = compose_services()
    realm = json.loads((ROOT / "deploy" / "keycloak" / "onedoor-realm.json").read_text())
    keycloak, workbench = services["keycloak"]["environment"], services["workbench"]["environment"]
    api = services["intake"]["environment"]
    issuer = f"{keycloak['KC_HOSTNAME']}/realms/{realm['realm']}"
    expected = {
        "the services' ONEDOOR_JWT_ISSUER": (api["ONEDOOR_JWT_ISSUER"], issuer),
        "the workbench's OIDC_ISSUER": (workbench["OIDC_ISSUER"], issuer),
        "the realm's public URL": (keycloak["ONEDOOR_PUBLIC_URL"], workbench["WORKBENCH_PUBLIC_URL"]),
        "the services' JWKS": (api["ONEDOOR_JWKS_URL"],
                               f"http://keycloak:8080{keycloak['KC_HTTP_RELATIVE_PATH']}/realms/{realm['realm']}"
                               "/protocol/openid-connect/certs"),
    }
    clients = {c["clientId"]: c for c in realm["clients"]}
    client = clients.get(workbench["OIDC_CLIENT_ID"])
    if client is None:
        failures.append(f"deploy/keycloak: no client {workbench['OIDC_CLIENT_ID']} for the workbench")
    else:
        scopes = {s["name"]: s for s in realm["clientScopes"]}
        audiences = [m["config"]["included.custom.audience"] for name in client["defaultClientScopes"]
                     for m in scopes.get(name, {}).get("protocolMappers", []) if m["protocolMapper"] == "oidc-audience-mapper"]
        expected["the tokens' audience"] = (api["ONEDOOR_JWT_AUDIENCE"], audiences[0] if audiences else None)
        expected["the client is public with PKCE"] = ((client["publicClient"], client["attributes"]["pkce.code.challenge.method"]),
                                                      (True, "S256"))
        expected["the workbench's callback"] = (client["redirectUris"], ["${ONEDOOR_PUBLIC_URL}/oidc/callback"])
    for what, (found, wanted) in expected.items():
        if found != wanted:
            failures.append(f"deploy/keycloak: {what}: {found!r}, expected {wanted!r}")
    # Keycloak replaces ${NAME} from its environment on import; lower-case
    # ones are its own message keys.
    placeholders = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", json.dumps(realm)))
    if placeholders - set(keycloak):
        failures.append(f"deploy/keycloak: placeholders compose does not set: {sorted(placeholders - set(keycloak))}")
    print(f"deploy/keycloak/onedoor-realm.json: issuer {issuer}, {len(realm['users'])} staff accounts, agrees with compose")


def check_dockerfile(hadolint):
    lint = subprocess.run([hadolint, str(ROOT / "deploy" / "Dockerfile")], capture_output=True, text=True)
    if lint.returncode != 0:
        failures.append(f"deploy/Dockerfile: hadolint: {lint.stdout.strip()} {lint.stderr.strip()}")
    else:
        print("deploy/Dockerfile: hadolint clean")


def check_shell_scripts(shellcheck):
    scripts = [ROOT / "deploy/restore-drill.sh", ROOT / "deploy/compose-env.sh", ROOT / "deploy/postgres/passwords.sh", ROOT / ".ci/run"]
    lint = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    if lint.returncode != 0:
        failures.append(f"shellcheck: {lint.stdout.strip()} {lint.stderr.strip()}")
    else:
        print(f"shellcheck clean: {', '.join(str(s.relative_to(ROOT)) for s in scripts)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["images"]:
        print_images()
        sys.exit(0)
    check_overlays()
    check_restore_drill()
    check_nats_chart()
    check_nats_values()
    check_stream_budget()
    check_compose()
    check_compose_edge(os.environ.get("NGINX", "nginx"))
    check_realm()
    check_monitoring(os.environ.get("PROMTOOL", "promtool"))
    check_dockerfile(os.environ.get("HADOLINT", "hadolint"))
    check_shell_scripts(os.environ.get("SHELLCHECK", "shellcheck"))
    for f in failures:
        print(f"FAILED {f}", file=sys.stderr)
    sys.exit(1 if failures else 0)
