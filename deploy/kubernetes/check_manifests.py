#!/usr/bin/env python3
"""What the schemas cannot say about a rendered overlay.

    kubectl kustomize deploy/kubernetes/overlays/ha > ha.yaml
    python3 deploy/kubernetes/check_manifests.py ha ha.yaml deploy/Dockerfile

kubernetes-validate proves each object well formed; this proves them
Proofline's: every pod locked down and sized, each role started as that
role with its probes, the webhooks role without the signing key, no Secret
in the repository, every selector and reference resolving, and the
overlay's replica counts. Prints nothing and exits 0 when all hold; else
one line per problem and exits 1.
"""

import re
import sys

import yaml

ROLES = ("api", "projector", "relay", "webhooks")
SECRETS = {
    "proofline-keys",
    "proofline-sealing-key",
    "proofline-database",
    "proofline-database-owner",
    "proofline-nats",
}
# Replicas per Deployment (None: the HPA owns it), and the HPA's bounds.
EXPECTED = {
    "small": ({"api": 1, "projector": 1, "relay": 1, "webhooks": 1}, None),
    "ha": ({"api": None, "projector": 2, "relay": 2, "webhooks": 2}, (3, 10)),
}


def main(overlay, rendered, dockerfile):
    problems = []
    fail = problems.append
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

    text = open(dockerfile).read()
    uids = set(re.findall(r"--uid (\d+)", text)) | set(re.findall(r"^USER (\d+)", text, re.M))
    if len(uids) != 1:
        fail(f"{dockerfile}: expected one numeric user, found {sorted(uids)}")
    image_uid = int(uids.pop()) if len(uids) == 1 else None

    if "Secret" in by_kind:
        fail(f"Secrets in the repository: {sorted(by_kind['Secret'])} (the operator creates them)")

    workloads = [d for k in ("Deployment", "StatefulSet", "Job") for d in by_kind.get(k, {}).values()]
    for w in workloads:
        name = f"{w['kind']}/{w['metadata']['name']}"
        template = w["spec"]["template"]
        pod = template["spec"]
        labels = template["metadata"].get("labels", {})
        if pod.get("automountServiceAccountToken") is not False:
            fail(f"{name}: automountServiceAccountToken is not false")
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            fail(f"{name}: pod runAsNonRoot is not true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            fail(f"{name}: pod seccompProfile is not RuntimeDefault")
        selector = w["spec"].get("selector", {}).get("matchLabels")
        if selector and any(labels.get(k) != v for k, v in selector.items()):
            fail(f"{name}: selector {selector} does not match its template's labels")
        for c in pod.get("initContainers", []) + pod["containers"]:
            cname = f"{name} container {c['name']}"
            sc = c.get("securityContext", {})
            for key, want in (
                ("readOnlyRootFilesystem", True),
                ("allowPrivilegeEscalation", False),
                ("runAsNonRoot", True),
            ):
                if sc.get(key) is not want:
                    fail(f"{cname}: {key} is not {want}")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                fail(f"{cname}: capabilities do not drop ALL")
            res = c.get("resources", {})
            for path in ("requests.cpu", "requests.memory", "limits.memory"):
                section, key = path.split(".")
                if key not in res.get(section, {}):
                    fail(f"{cname}: no {path}")
            if c["image"].split(":")[0] == "proofline":
                uid = sc.get("runAsUser", psc.get("runAsUser"))
                if uid != image_uid:
                    fail(f"{cname}: runs as {uid}, the image's user is {image_uid}")
            for ref in c.get("envFrom", []):
                cm = ref.get("configMapRef", {}).get("name")
                if cm and cm not in by_kind.get("ConfigMap", {}):
                    fail(f"{cname}: envFrom ConfigMap {cm} is not in the output")
            for env in c.get("env", []):
                secret = env.get("valueFrom", {}).get("secretKeyRef", {}).get("name")
                if secret and secret not in SECRETS:
                    fail(f"{cname}: Secret {secret} is not one the README tells the operator to create")
        secrets_used = set()
        for v in pod.get("volumes", []):
            if "secret" in v:
                secrets_used.add(v["secret"]["secretName"])
            if "configMap" in v and v["configMap"]["name"] not in by_kind.get("ConfigMap", {}):
                fail(f"{name}: volume ConfigMap {v['configMap']['name']} is not in the output")
        for c in pod.get("initContainers", []) + pod["containers"]:
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secrets_used.add(ref["name"])
        if secrets_used - SECRETS:
            fail(f"{name}: unknown Secrets {sorted(secrets_used - SECRETS)}")

        role = labels.get("app.kubernetes.io/component")
        if w["kind"] == "Deployment":
            if role not in ROLES or w["metadata"]["name"] != f"proofline-{role}":
                fail(f"{name}: not one of the roles {ROLES}")
                continue
            main_container = pod["containers"][0]
            args = main_container.get("args", [])
            if args != ["serve", "--role", role, "--no-migrate"]:
                fail(f"{name}: args {args}, want serve --role {role} --no-migrate")
            for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
                got = main_container.get(probe, {}).get("httpGet", {})
                if got.get("path") != path or got.get("port") not in ("http", 8080):
                    fail(f"{name}: {probe} is not GET {path} on 8080")
            keys = {"api": {"proofline-keys", "proofline-sealing-key"}, "webhooks": {"proofline-sealing-key"}}
            want = keys.get(role, set())
            held = secrets_used & {"proofline-keys", "proofline-sealing-key"}
            if held != want:
                fail(f"{name}: holds the key Secrets {sorted(held)}, want {sorted(want)}")
        if w["kind"] == "Job" and w["spec"]["template"]["spec"]["containers"][0].get("args") != ["migrate"]:
            fail(f"{name}: does not run proofline migrate")

    pod_labels = [w["spec"]["template"]["metadata"].get("labels", {}) for w in workloads]

    def selects_some(selector):
        return any(all(l.get(k) == v for k, v in selector.items()) for l in pod_labels)

    for kind, path in (("Service", ("spec", "selector")), ("PodDisruptionBudget", ("spec", "selector", "matchLabels"))):
        for name, d in by_kind.get(kind, {}).items():
            selector = d
            for key in path:
                selector = selector.get(key, {})
            if not selector or not selects_some(selector):
                fail(f"{kind}/{name}: selects no pod")

    deployments = by_kind.get("Deployment", {})
    hpas = by_kind.get("HorizontalPodAutoscaler", {})
    for name, h in hpas.items():
        target = h["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            fail(f"HorizontalPodAutoscaler/{name}: no Deployment {target}")
    replicas, bounds = EXPECTED[overlay]
    for role, count in replicas.items():
        d = deployments.get(f"proofline-{role}")
        if d is None:
            fail(f"no Deployment proofline-{role}")
        elif d["spec"].get("replicas") != count:
            fail(f"Deployment/proofline-{role}: replicas {d['spec'].get('replicas')}, want {count}")
    hpa = hpas.get("proofline-api")
    if bounds is None and hpa:
        fail("an HPA for the API, where this overlay runs a fixed replica")
    if bounds is not None:
        if hpa is None:
            fail("no HorizontalPodAutoscaler proofline-api")
        elif (hpa["spec"].get("minReplicas"), hpa["spec"]["maxReplicas"]) != bounds:
            got = (hpa["spec"].get("minReplicas"), hpa["spec"]["maxReplicas"])
            fail(f"HorizontalPodAutoscaler/proofline-api: min/max {got}, want {bounds}")

    config = next((c for n, c in by_kind.get("ConfigMap", {}).items() if n.startswith("proofline")), None)
    nats = by_kind.get("StatefulSet", {}).get("nats")
    if config is None or nats is None:
        fail("no ConfigMap proofline or no StatefulSet nats")
    else:
        data = config["data"]
        for key in ("DATABASE_URL", "PROOFLINE_LOG_ORIGIN", "PROOFLINE_PUBLIC_URL"):
            if not data.get(key):
                fail(f"ConfigMap proofline: no {key}")
        userinfo = data.get("DATABASE_URL", "").split("://", 1)[-1].split("@", 1)
        if len(userinfo) == 2 and ":" in userinfo[0]:
            fail("ConfigMap proofline: DATABASE_URL carries a password")
        if data.get("PROOFLINE_LOG_FORMAT") != "json":
            fail("ConfigMap proofline: PROOFLINE_LOG_FORMAT is not json")
        if int(data.get("PROOFLINE_NATS_STREAM_REPLICAS", "1")) > nats["spec"]["replicas"]:
            fail("PROOFLINE_NATS_STREAM_REPLICAS exceeds the NATS servers")

    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in EXPECTED:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(EXPECTED)}}} RENDERED.yaml Dockerfile")
    sys.exit(main(*sys.argv[1:]))
