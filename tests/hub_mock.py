"""A loopback mock of the Hugging Face Hub HTTP API, for testing uploads and downloads without the network.

It keeps model repos in memory and serves the endpoints `huggingface_hub` and `transformers` use to push and to load
them: repo creation, whoami, YAML validation, preupload (every file "regular", sent inline, no LFS), commits, repo
info, tree listing, paths info and file resolution (`HEAD`/`GET /{repo}/resolve/{revision}/{path}`).

Use it as a context manager or through the `mock_hub` pytest fixture:

    with MockHub() as hub, hub.patched_environment(tmp_path):
        HfApi().upload_folder(...)              # in this process
        subprocess.run(..., env=hub.environment(tmp_path / "child"))   # or in a fresh one
"""

import base64
import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest


DUMMY_TOKEN = "hf_mock_token_for_tests"


class MockHub:
    """In-memory Hub served on `127.0.0.1` at a random port; `url` is its endpoint, `requests` the log of
    `(method, path)` it answered, `repos` maps repo id -> `{"files": {path: bytes}, "commits": [sha, ...]}`."""

    def __init__(self, user: str = "testuser"):
        self.user = user
        self.repos: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "MockHub":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def files(self, repo_id: str) -> dict[str, bytes]:
        """The current files of a repo (path -> content)."""
        return dict(self.repos[repo_id]["files"])

    def environment(self, home: str | os.PathLike, base: dict | None = None) -> dict[str, str]:
        """Environment variables that point a fresh process at this hub (with its own cache under `home`)."""
        home = Path(home)
        env = dict(os.environ if base is None else base)
        env.update(
            HF_ENDPOINT=self.url,
            HF_TOKEN=DUMMY_TOKEN,
            HF_HOME=str(home / "hf_home"),
            HF_HUB_CACHE=str(home / "hf_home" / "hub"),
            HF_MODULES_CACHE=str(home / "hf_modules"),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_XET="1",
        )
        for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            env.pop(key, None)
        return env

    @contextlib.contextmanager
    def patched_environment(self, home: str | os.PathLike) -> Iterator["MockHub"]:
        """Points this process's `huggingface_hub` at the mock (environment and its already-read endpoint
        constants) and gives transformers a fresh shared client (it keeps one per process, with the endpoint it was
        created with), restoring everything on exit."""
        from huggingface_hub import constants
        from transformers.utils import hub as transformers_hub

        saved_env = dict(os.environ)
        saved = {name: getattr(constants, name) for name in ("ENDPOINT", "HUGGINGFACE_CO_URL_TEMPLATE", "HF_HUB_CACHE")}
        saved_client = transformers_hub._hf_api
        os.environ.clear()
        os.environ.update(self.environment(home, saved_env))
        constants.ENDPOINT = self.url
        constants.HUGGINGFACE_CO_URL_TEMPLATE = self.url + "/{repo_id}/resolve/{revision}/{filename}"
        constants.HF_HUB_CACHE = os.environ["HF_HUB_CACHE"]
        transformers_hub._hf_api = None
        try:
            yield self
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            for name, value in saved.items():
                setattr(constants, name, value)
            transformers_hub._hf_api = saved_client

    # -- repository state ------------------------------------------------------------------------------------------

    def _create(self, repo_id: str) -> None:
        with self._lock:
            if repo_id not in self.repos:
                self.repos[repo_id] = {"files": {}, "commits": [hashlib.sha1(repo_id.encode()).hexdigest()]}

    def _commit(self, repo_id: str, lines: list[dict]) -> str:
        with self._lock:
            repo = self.repos[repo_id]
            for line in lines:
                key, value = line.get("key"), line.get("value", {})
                if key == "file":
                    repo["files"][value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    repo["files"].pop(value["path"], None)
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    repo["files"] = {p: c for p, c in repo["files"].items() if not p.startswith(prefix)}
                elif key != "header":
                    raise ValueError(f"the mock hub accepts only inline files, got a {key!r} operation")
            digest = hashlib.sha1(repr((repo["commits"][-1], sorted(repo["files"].items()))).encode()).hexdigest()
            repo["commits"].append(digest)
            return digest

    def _resolve(self, repo_id: str, revision: str) -> str | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return None
        if revision in ("main", repo["commits"][-1]):
            return repo["commits"][-1]
        return None


def _make_handler(hub: MockHub) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # keep test output quiet
            pass

        # -- helpers -----------------------------------------------------------------------------------------------

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, payload=None, headers: dict | None = None, body: bytes | None = None) -> None:
            if body is None:
                body = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if payload is not None else "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

        def _route(self) -> tuple[list[str], dict]:
            split = urlsplit(self.path)
            hub.requests.append((self.command, split.path))
            return [unquote(part) for part in split.path.strip("/").split("/")], parse_qs(split.query)

        def _repo_info(self, repo_id: str, sha: str) -> dict:
            files = hub.repos[repo_id]["files"]
            return {
                "id": repo_id,
                "modelId": repo_id,
                "sha": sha,
                "private": False,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": [{"rfilename": path, "size": len(content)} for path, content in sorted(files.items())],
            }

        def _entry(self, path: str, content: bytes) -> dict:
            return {"type": "file", "path": path, "size": len(content), "oid": _git_blob_sha(content)}

        # -- verbs -------------------------------------------------------------------------------------------------

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            parts, query = self._route()
            if parts[:2] == ["api", "whoami-v2"]:
                return self._send(
                    200,
                    {"type": "user", "name": hub.user, "orgs": [], "auth": {"accessToken": {"role": "write"}}},
                )
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo_id = "/".join(parts[2:4])
                rest = parts[4:]
                if repo_id not in hub.repos:
                    return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                revision = rest[1] if len(rest) >= 2 and rest[0] in ("revision", "tree") else "main"
                sha = hub._resolve(repo_id, revision)
                if sha is None:
                    return self._error(404, "RevisionNotFound", f"Revision {revision} not found")
                if not rest or rest[0] == "revision":
                    return self._send(200, self._repo_info(repo_id, sha))
                if rest[0] == "tree":
                    prefix = "/".join(rest[2:])
                    files = hub.repos[repo_id]["files"]
                    entries = [self._entry(p, c) for p, c in sorted(files.items()) if p.startswith(prefix)]
                    return self._send(200, entries)
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id, revision, path = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                if repo_id not in hub.repos:
                    return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                sha = hub._resolve(repo_id, revision)
                if sha is None:
                    return self._error(404, "RevisionNotFound", f"Revision {revision} not found")
                content = hub.repos[repo_id]["files"].get(path)
                if content is None:
                    return self._error(404, "EntryNotFound", f"{path} does not exist in {repo_id}")
                headers = {"X-Repo-Commit": sha, "ETag": f'"{_git_blob_sha(content)}"'}
                return self._send(200, headers=headers, body=content)
            return self._error(404, "NotFound", f"mock hub has no route for GET {self.path}")

        def do_POST(self):
            parts, _ = self._route()
            body = self._body()
            if parts == ["api", "repos", "create"]:
                payload = json.loads(body or b"{}")
                repo_id = f"{payload.get('organization') or hub.user}/{payload['name']}"
                hub._create(repo_id)
                return self._send(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id, "id": repo_id})
            if parts == ["api", "validate-yaml"]:
                return self._send(200, {"errors": [], "warnings": []})
            if parts[:2] == ["api", "models"] and len(parts) >= 6:
                repo_id, action = "/".join(parts[2:4]), parts[4]
                if repo_id not in hub.repos:
                    return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                if action == "preupload":
                    files = json.loads(body)["files"]
                    answer = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                    return self._send(200, {"files": answer, "commitOid": hub.repos[repo_id]["commits"][-1]})
                if action == "commit":
                    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                    try:
                        sha = hub._commit(repo_id, lines)
                    except ValueError as error:
                        return self._error(400, "BadRequest", str(error))
                    return self._send(
                        200,
                        {"commitUrl": f"{hub.url}/{repo_id}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None},
                    )
                if action == "paths-info":
                    fields = parse_qs(body.decode())
                    paths = fields.get("paths", [])
                    if not paths and body.strip().startswith(b"{"):
                        paths = json.loads(body).get("paths", [])
                    files = hub.repos[repo_id]["files"]
                    return self._send(200, [self._entry(p, files[p]) for p in paths if p in files])
            return self._error(404, "NotFound", f"mock hub has no route for POST {self.path}")

    return Handler


def _git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@pytest.fixture
def mock_hub(tmp_path) -> Iterator[MockHub]:
    """A running `MockHub` with this process's `huggingface_hub` pointed at it; `hub.environment(dir)` gives the
    environment for subprocesses."""
    with MockHub() as hub, hub.patched_environment(tmp_path / "hub_client"):
        yield hub
