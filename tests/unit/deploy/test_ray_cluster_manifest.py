"""ray_cluster.yaml, checked as ``kubectl apply --validate=strict`` would and against what the engine needs.

Every document validates: the KubeRay kinds against the vendored KubeRay CRDs (tests/fixtures/kuberay), every other
kind against the Kubernetes JSON schemas that the ``kubernetes-validate`` package ships (offline). The CRDs leave
parts of a pod open, so every pod template is also validated as a core ``PodTemplateSpec``. Then the wiring: the
settings in the ConfigMap are the engine's own and name production backends, every path they name is mounted from
the right volume, the database is reached through a Cloud SQL Auth Proxy sidecar, every pod runs as the Workload
Identity service account, and the agents' Job runs a command line that ``ame agents up`` accepts.
Each check is shown to fail on a broken copy of the manifest.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import shlex
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import typer
import yaml
from referencing import Registry, Resource

from agents.cli import KNOWN, agents_app
from data.settings import Settings

ROOT = PurePosixPath(__file__).parents[3]
MANIFEST = f"{ROOT}/ray_cluster.yaml"
GUIDE = f"{ROOT}/docs/tutorials/deploy-on-gke.md"
KUBERAY = f"{ROOT}/tests/fixtures/kuberay"  # the CRDs, with their SOURCE.md
K8S_VERSION = "1.33.0"  # the oldest GKE minor with native sidecars (initContainers with restartPolicy: Always) GA
GCSFUSE = "gcsfuse.csi.storage.gke.io"
MAX_METADATA_TTL_S = 2  # a promotion must reach every replica within seconds
Doc = dict[str, Any]


def load() -> list[Doc]:
    with open(MANIFEST) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def the(docs: list[Doc], kind: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in ray_cluster.yaml, found {len(found)}"
    return found[0]


# --- schemas ---------------------------------------------------------------------------------------------------

def _strict(schema: Any) -> Any:
    """The CRD schema with ``additionalProperties: false`` wherever properties are listed and nothing else is
    allowed (Kubernetes prunes unknown fields silently; strict validation reports them)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    with open(f"{KUBERAY}/{kind.lower()}s.crd.yaml") as f:
        crd = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 1 MB in 0.5 s, not 5
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))


def _k8s_schema(name: str) -> Any:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
    return json.loads((folder / name).read_text())


@cache
def core_validator(name: str) -> jsonschema.Draft202012Validator:
    """The strict Kubernetes schema in ``name`` (e.g. ``configmap-v1.json``), its references resolved offline."""
    schema = _k8s_schema(name)
    registry = Registry().with_resources(
        [(s["$id"], Resource.from_contents(s)) for s in (schema, _k8s_schema("_definitions.json"))]
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def schema_file(doc: Doc) -> str:
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])  # batch/v1 -> batch-v1, v1 -> v1
    return f"{doc['kind'].lower()}-{api}.json"


def _messages(validator: Any, doc: Any, where: str) -> list[str]:
    return [f"{where}.{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def schema_problems(doc: Doc) -> list[str]:
    where = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
    if doc["apiVersion"].startswith("ray.io/"):
        return _messages(crd_validator(doc["kind"]), doc, where)
    try:
        validator = core_validator(schema_file(doc))
    except FileNotFoundError:
        return [f"{where}: no Kubernetes {K8S_VERSION} schema for {doc['apiVersion']} {doc['kind']}"]
    return _messages(validator, doc, where)


# --- the pods --------------------------------------------------------------------------------------------------

def pod_templates(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """Every pod template of the manifest, with where it is."""
    cluster = the(docs, "RayService")["spec"]["rayClusterConfig"]
    yield "head", cluster["headGroupSpec"]["template"]
    for group in cluster["workerGroupSpecs"]:
        yield f"worker group {group['groupName']}", group["template"]
    yield "Job ame-agents", the(docs, "Job")["spec"]["template"]


def ray_containers(docs: list[Doc]) -> Iterator[tuple[str, Doc, Doc]]:
    """(where, pod spec, container) for the Ray container of every Ray pod (KubeRay runs `ray start` in the first)."""
    for where, template in pod_templates(docs):
        if not where.startswith("Job"):
            yield where, template["spec"], template["spec"]["containers"][0]


def settings_of(docs: list[Doc]) -> dict[str, str]:
    return the(docs, "ConfigMap").get("data", {})


def _env_from(container: Doc, ref: str) -> set[str]:
    return {e[ref]["name"] for e in container.get("envFrom", []) if ref in e}


def _mount_for(path: str, pod: Doc, container: Doc) -> tuple[Doc, Doc] | None:
    """The volume mount holding ``path`` (the deepest one) and its volume."""
    mounts = [m for m in container.get("volumeMounts", []) if PurePosixPath(path).is_relative_to(m.get("mountPath", "-"))]
    if not mounts:
        return None
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volume = next((v for v in pod.get("volumes", []) if v["name"] == mount["name"]), None)
    return (mount, volume) if volume is not None else None


def path_problems(where: str, pod: Doc, container: Doc, env: dict[str, str]) -> list[str]:
    """The keys file must come from a Secret, the registries from the bucket (GCS FUSE)."""
    out = []
    keys_file = env.get("AME_SERVE_API_KEYS_FILE", "")
    found = _mount_for(keys_file, pod, container) if keys_file else None
    if found is None or "secret" not in found[1]:
        out.append(f"{where}: AME_SERVE_API_KEYS_FILE={keys_file} is not under a volumeMount of a Secret volume")
    else:
        mount, volume = found
        items = [i["path"] for i in volume["secret"].get("items", [])]
        relative = str(PurePosixPath(keys_file).relative_to(mount["mountPath"]))
        if items and relative not in items:
            out.append(f"{where}: the Secret volume {volume['name']} holds {items}, not {relative}")
    for name in ("AME_POLICIES_DIR", "AME_MODELS_DIR"):
        found = _mount_for(env.get(name, "."), pod, container)
        if found is None or found[1].get("csi", {}).get("driver") != GCSFUSE:
            out.append(f"{where}: {name}={env.get(name)} is not under a volumeMount of the bucket ({GCSFUSE} volume)")
    return out


def proxy_problems(where: str, pod: Doc, env: dict[str, str]) -> list[str]:
    """A store on 127.0.0.1 needs the Cloud SQL Auth Proxy as a native sidecar on that port."""
    ports = {urlsplit(v).port or 5432 for k, v in env.items() if v.startswith("postgresql://")
             and urlsplit(v).hostname in ("127.0.0.1", "localhost")}
    sidecars = [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"
                and "cloud-sql-proxy" in c["image"]]
    listening = {int(a.split("=", 1)[1]) for c in sidecars for a in c.get("args", []) if a.startswith("--port=")}
    return [f"{where}: PostgreSQL on 127.0.0.1:{p} but no Cloud SQL Auth Proxy native sidecar "
            f"(initContainer with restartPolicy: Always) listens there" for p in sorted(ports - listening)]


def pod_problems(docs: list[Doc]) -> list[str]:
    """Core PodTemplateSpec validity, Workload Identity and the GCS FUSE annotation for every pod template."""
    account = the(docs, "ServiceAccount")["metadata"]["name"]
    out = []
    for where, template in pod_templates(docs):
        out += _messages(core_validator("podtemplatespec-v1.json"), template, where)
        spec = template["spec"]
        if spec.get("serviceAccountName") != account:
            out.append(f"{where}: serviceAccountName is {spec.get('serviceAccountName')!r}, not {account!r}")
        if spec.get("nodeSelector", {}).get("iam.gke.io/gke-metadata-server-enabled") != "true":
            out.append(f"{where}: not on nodes with the GKE metadata server (Workload Identity)")
        uses_fuse = any(v.get("csi", {}).get("driver") == GCSFUSE for v in spec.get("volumes", []))
        if uses_fuse and template.get("metadata", {}).get("annotations", {}).get("gke-gcsfuse/volumes") != "true":
            out.append(f"{where}: a {GCSFUSE} volume without the pod annotation gke-gcsfuse/volumes: \"true\"")
    return out


def container_problems(docs: list[Doc]) -> list[str]:
    """Every Ray container reads the settings from the ConfigMap (and only there), the password from the Secret,
    and has every path the settings name mounted."""
    env = settings_of(docs)
    config_map = the(docs, "ConfigMap")["metadata"]["name"]
    out = []
    for where, pod, container in ray_containers(docs):
        if config_map not in _env_from(container, "configMapRef"):
            out.append(f"{where}: does not read the settings (envFrom configMapRef {config_map})")
        for secret, holds in (("ame-db", "the database password"), ("ame-integrations", "the channel and CRM credentials")):
            if secret not in _env_from(container, "secretRef"):
                out.append(f"{where}: does not read {holds} (envFrom secretRef {secret})")
        out += [f"{where}: sets {e['name']} itself; settings belong in the ConfigMap {config_map}"
                for e in container.get("env", []) if e["name"].startswith("AME_")]
        out += path_problems(where, pod, container, env)
        out += proxy_problems(where, pod, env)
    return out


def settings_problems(docs: list[Doc]) -> list[str]:
    """The ConfigMap names only real settings, they parse, and they pick the production backends."""
    env = settings_of(docs)
    known = {f"AME_{name.upper()}" for name in Settings.model_fields}
    out = [f"ConfigMap: {k} is not a setting of the engine (data/settings.py)" for k in env if k not in known]
    try:
        # as the environment is read: a complex setting (a dict) is JSON text there
        settings = Settings.model_validate({k[4:].lower(): json.loads(v) if v.startswith("{") else v
                                            for k, v in env.items() if k in known})
    except ValueError as error:
        return [*out, f"ConfigMap: the settings do not parse: {error}"]
    if not settings.event_log.startswith("pubsub://"):
        out.append(f"ConfigMap: AME_EVENT_LOG={settings.event_log!r} is not a pubsub:// log")
    if not settings.warehouse.startswith("bigquery://"):
        out.append(f"ConfigMap: AME_WAREHOUSE={settings.warehouse!r} is not bigquery://")
    for name in ("state_store", "key_store", "creative_store", "pubsub_dead_letter_store"):
        if not getattr(settings, name).startswith("postgresql://"):
            out.append(f"ConfigMap: AME_{name.upper()} is not on PostgreSQL (a pod's own SQLite file otherwise)")
    return out


def bucket_problems(docs: list[Doc]) -> list[str]:
    """Every GCS FUSE mount lists implicit directories and caches metadata for at most a couple of seconds."""
    out = []
    for where, template in pod_templates(docs):
        for volume in template["spec"].get("volumes", []):
            if volume.get("csi", {}).get("driver") != GCSFUSE:
                continue
            options = volume["csi"].get("volumeAttributes", {}).get("mountOptions", "").split(",")
            ttl = [int(o.rsplit(":", 1)[1]) for o in options if o.startswith("metadata-cache:ttl-secs:")]
            if "implicit-dirs" not in options:
                out.append(f"{where}: the bucket is mounted without implicit-dirs")
            if not ttl or not 0 <= ttl[0] <= MAX_METADATA_TTL_S:
                out.append(f"{where}: the bucket's metadata-cache:ttl-secs must be 0..{MAX_METADATA_TTL_S} s "
                           f"(replicas see a promotion that late), found {ttl or 'the default (60 s)'}")
    return out


def placement_problems(docs: list[Doc]) -> list[str]:
    """The Ray resources the agents ask for (AME_AGENT_RESOURCES) are offered by the `agents` group, and only there."""
    try:
        wanted = set(json.loads(settings_of(docs).get("AME_AGENT_RESOURCES", "{}")))
    except ValueError as error:
        return [f"ConfigMap: AME_AGENT_RESOURCES is not JSON: {error}"]
    if not wanted:
        return ["ConfigMap: AME_AGENT_RESOURCES is not set: the agents' actors could land on any node"]
    out = []
    for group in the(docs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        offered = set(group.get("resources", {}))
        if group["groupName"] == "agents" and not wanted <= offered:
            out.append(f"worker group agents: does not offer {sorted(wanted - offered)} (its `resources`), which "
                       "AME_AGENT_RESOURCES asks for: the agents would wait for a node for ever")
        if group["groupName"] != "agents" and wanted & offered:
            out.append(f"worker group {group['groupName']}: offers {sorted(wanted & offered)}, meant for the agents")
    return out


def problems(docs: list[Doc]) -> list[str]:
    """Everything wrong with the manifest ``docs``; empty when it can be applied as it is."""
    out = [p for doc in docs for p in schema_problems(doc)]
    for check in (pod_problems, container_problems, settings_problems, bucket_problems, placement_problems):
        out += check(docs)
    return out


# --- the tests -------------------------------------------------------------------------------------------------

def test_the_manifest_validates_and_is_wired_as_the_engine_needs() -> None:
    docs = load()
    assert {d["kind"] for d in docs} == {"ServiceAccount", "ConfigMap", "RayService", "Job"}
    assert problems(docs) == []


def test_the_kuberay_cluster_spec_validates_as_a_raycluster() -> None:
    service = the(load(), "RayService")
    cluster = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "ame"},
               "spec": service["spec"]["rayClusterConfig"]}
    assert schema_problems(cluster) == []
    spec = cluster["spec"]
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0" and spec["enableInTreeAutoscaling"] is True
    for group in spec["workerGroupSpecs"]:
        assert 1 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def test_embedded_serve_config_equals_serve_config_yaml() -> None:
    from ray.serve.schema import ServeDeploySchema  # lazy: Ray is heavy

    embedded = yaml.safe_load(the(load(), "RayService")["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(embedded)
    with open(f"{ROOT}/serve/config.yaml") as f:
        assert embedded == yaml.safe_load(f)


def test_the_agents_job_runs_a_command_line_that_ame_agents_up_accepts() -> None:
    docs = load()
    command = the(docs, "Job")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["ray", "job", "submit"]
    address = command[command.index("--address") + 1]
    assert urlsplit(address).hostname == f"{the(docs, 'RayService')['metadata']['name']}-head-svc"  # KubeRay's name
    entrypoint = command[command.index("--") + 1:]
    assert entrypoint[:3] == ["ame", "agents", "up"]
    up = typer.main.get_command(agents_app).commands["up"]  # type: ignore[attr-defined]
    context = up.make_context("up", entrypoint[3:])  # parses as the CLI would; a wrong option raises
    assert context.params["address"] == "auto" and set(context.params["agents"]) <= set(KNOWN)


def test_every_secret_the_manifest_reads_is_created_in_the_ops_guide() -> None:
    docs = load()
    refs = {v["secret"]["secretName"] for _, t in pod_templates(docs) for v in t["spec"].get("volumes", []) if "secret" in v}
    refs |= {name for _, _, c in ray_containers(docs) for name in _env_from(c, "secretRef")}
    with open(GUIDE) as f:
        created = set(re.findall(r"create secret generic (\S+)", f.read()))
    assert refs and refs <= created, f"secrets the guide does not create: {refs - created}"
    assert not any(d["kind"] == "Secret" for d in docs), "secrets are created by hand, never kept in the manifest"


def _ray_pod(docs: list[Doc], group: int = 0) -> Doc:
    return the(docs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"][group]["template"]


def _worker(docs: list[Doc], group: int = 0) -> Doc:
    return _ray_pod(docs, group)["spec"]["containers"][0]


def _break_mount_path(docs: list[Doc]) -> None:
    _worker(docs)["volumeMounts"][1]["mountpath"] = _worker(docs)["volumeMounts"][1].pop("mountPath")


def _drop_keys_mount(docs: list[Doc]) -> None:
    _worker(docs)["volumeMounts"] = [m for m in _worker(docs)["volumeMounts"] if m["name"] != "api-keys"]


def _move_keys_file(docs: list[Doc]) -> None:
    settings_of(docs)["AME_SERVE_API_KEYS_FILE"] = "/secrets/keys.json"


def _misspell_setting(docs: list[Doc]) -> None:
    settings_of(docs)["AME_STATE_STOR"] = settings_of(docs).pop("AME_STATE_STORE")


def _plain_sidecar(docs: list[Doc]) -> None:
    del _ray_pod(docs, 1)["spec"]["initContainers"][0]["restartPolicy"]


def _drop_fuse_annotation(docs: list[Doc]) -> None:
    del _ray_pod(docs)["metadata"]["annotations"]["gke-gcsfuse/volumes"]


def _long_metadata_cache(docs: list[Doc]) -> None:
    attributes = _ray_pod(docs)["spec"]["volumes"][0]["csi"]["volumeAttributes"]
    attributes["mountOptions"] = attributes["mountOptions"].replace("ttl-secs:1", "ttl-secs:60")


def _other_account(docs: list[Doc]) -> None:
    the(docs, "Job")["spec"]["template"]["spec"]["serviceAccountName"] = "default"


def _misspell_job_field(docs: list[Doc]) -> None:
    the(docs, "Job")["spec"]["backofLimit"] = the(docs, "Job")["spec"].pop("backoffLimit")


def _misspell_configmap_field(docs: list[Doc]) -> None:
    the(docs, "ConfigMap")["date"] = the(docs, "ConfigMap")["data"]


def _misspell_raycluster_field(docs: list[Doc]) -> None:
    the(docs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplica"] = 10


def _sqlite_state(docs: list[Doc]) -> None:
    settings_of(docs)["AME_STATE_STORE"] = "sqlite:///.ame/state.db"


def _agents_group_offers_nothing(docs: list[Doc]) -> None:
    del the(docs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"][1]["resources"]


def _setting_outside_the_configmap(docs: list[Doc]) -> None:
    _worker(docs, 1)["env"].append({"name": "AME_EVENT_LOG", "value": "sqlite:///x.db"})


@pytest.mark.parametrize(
    "damage, expected",
    [
        (_break_mount_path, "mountpath"),                      # a misspelled field the CRD schema leaves open
        (_drop_keys_mount, "AME_SERVE_API_KEYS_FILE=/secrets/api-keys/keys.json is not under a volumeMount"),
        (_move_keys_file, "AME_SERVE_API_KEYS_FILE=/secrets/keys.json is not under a volumeMount"),
        (_misspell_setting, "AME_STATE_STOR is not a setting"),
        (_sqlite_state, "AME_STATE_STORE is not on PostgreSQL"),
        (_setting_outside_the_configmap, "sets AME_EVENT_LOG itself"),
        (_agents_group_offers_nothing, "worker group agents: does not offer ['agents']"),
        (_plain_sidecar, "no Cloud SQL Auth Proxy native sidecar"),
        (_drop_fuse_annotation, "gke-gcsfuse/volumes"),
        (_long_metadata_cache, "metadata-cache:ttl-secs"),
        (_other_account, "serviceAccountName is 'default'"),
        (_misspell_job_field, "backofLimit"),
        (_misspell_configmap_field, "date"),
        (_misspell_raycluster_field, "maxReplica"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] or None,
)
def test_a_broken_manifest_is_caught(damage: Callable[[list[Doc]], None], expected: str) -> None:
    docs = copy.deepcopy(load())
    damage(docs)
    found = problems(docs)
    assert any(expected in p for p in found), found


def guide_commands() -> list[list[str]]:
    """The arguments of every ``ame`` command line in the guide's shell blocks (after ``ame``, up to a pipe)."""
    with open(GUIDE) as f:
        blocks = re.findall(r"```bash\n(.*?)```", f.read(), flags=re.S)
    out = []
    lines = (ln for block in blocks for ln in block.replace("\\\n", " ").splitlines())
    for line in (ln for ln in lines if re.search(r"(^|-- |/)ame ", ln)):  # not `-n ame`; quotes may span lines
        tokens = shlex.split(line, comments=True)
        starts = [i for i, t in enumerate(tokens) if t.endswith("bin/ame") or (t == "ame" and (i == 0 or tokens[i - 1] == "--"))]
        for i in starts:
            args = list(itertools.takewhile(lambda t: t not in ("|", "&&", ";", ">"), tokens[i + 1:]))
            out.append(args)
    return out


def test_every_ame_command_in_the_guide_is_one_the_cli_accepts() -> None:
    from ame.cli import app  # lazy: the whole CLI imports every area of the engine (seconds), only this test needs it

    commands = guide_commands()
    assert len(commands) >= 8, commands
    for args in commands:
        command = typer.main.get_command(app)
        rest = list(args)
        while isinstance(command, typer.core.TyperGroup):
            name = rest.pop(0)
            found = command.get_command(typer.Context(command), name)
            assert found is not None, f"`ame {' '.join(args)}`: no command {name!r}"
            command = found
        command.make_context(command.name or "", rest)  # parses as the CLI would; a wrong option raises


def test_the_guides_sed_line_fills_every_placeholder() -> None:
    with open(GUIDE) as f:
        placeholders = re.findall(r'-e "s/([A-Z_]+)/\$\w+/g"', f.read())
    assert set(placeholders) == {"PROJECT_ID", "REGION", "IMAGE_TAG"}, placeholders
    with open(MANIFEST) as f:
        text = f.read()
    for name, value in zip(placeholders, ("acme-marketing", "europe-west1", "3f2a9c1"), strict=True):
        text = text.replace(name, value)
    assert not re.search(r"\b(PROJECT_ID|REGION|IMAGE_TAG|[A-Z]{3,}_ID)\b", text)
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert problems(docs) == []
    images = {c["image"] for _, t in pod_templates(docs) for c in t["spec"]["containers"]}
    assert images == {"us-docker.pkg.dev/acme-marketing/ame/engine:3f2a9c1"}
