"""``sim deploy``: send an exported config to the ScaleGenAI API, or serve a local reference API.

``create`` / ``update`` take any export source (a create body, run or tune folder, sweep row,
scenario); ``get`` / ``delete`` an inference id. The base URL and key come from
``--base-url`` / ``--api-key`` or ``$SCALEGEN_API_URL`` / ``$SCALEGEN_API_KEY``. ``--dry-run``
prints the request (key and token masked) and sends nothing. A refused request (4xx) exits 2,
an unreachable or failing API (after the retries) exits 1, each with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sim.cli.export import SOURCE_HELP, add_source_options, load_body, load_current, update_plan
from sim.errors import ApiConnectionError, ApiServerError, ConfigError

#: Exit status when the API cannot be reached or keeps failing (4xx and bad input exit 2).
EXIT_API_DOWN = 1


def _client(args: argparse.Namespace) -> Any:
    from sim.api.client import ScaleGenClient

    return ScaleGenClient(
        args.base_url,
        args.api_key,
        timeout_s=args.timeout,
        retries=args.retries,
        auth_header=args.auth_header,
    )


def _print_message(message: Any) -> None:
    print(json.dumps(message, indent=2) if isinstance(message, dict | list) else message)


def _sets_anything(patch: Any) -> bool:
    """Whether an update body sets a field: empty sections such as ``{"autoscaling_config": {}}``
    set none, and ``imidiate_scale_down`` (always written, false by default) only says how to
    apply the other fields."""
    if isinstance(patch, dict):
        return any(_sets_anything(value) for key, value in patch.items()
                   if key != "imidiate_scale_down")
    return patch is not None


def _is_update_body(path: str) -> bool:
    """Whether ``path`` is a JSON/YAML file holding an update body (no ``model``, no ``deployment``)."""
    p = Path(path)
    if not p.is_file() or p.suffix.lower() not in (".json", ".yaml", ".yml"):
        return False
    from sim.io import read_yaml_or_json

    data = read_yaml_or_json(p)
    return "model" not in data and "deployment" not in data and "scenario" not in data


def _current_from_server(client: Any, inf_id: str) -> Any:
    """The deployment's create body from ``GET``, when the server returns it (the reference server does)."""
    from sim.api.schema import parse_create

    info = client.get(inf_id)
    config = info.get("config") if isinstance(info, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(
            "the server's GET answer does not include the deployment's config: pass the body "
            "it was created with as --current FILE",
            source="sim deploy update",
        )
    return parse_create(config, source=f"GET /sg_inf/{inf_id}")


def cmd_deploy(args: argparse.Namespace) -> int:
    """``sim deploy create|update|get|delete``."""
    from sim.api.client import id_path
    from sim.api.export import create_request
    from sim.api.schema import parse_update

    client = _client(args)
    action = args.deploy_command
    try:
        if action == "create":
            body = create_request(load_body(args.source, args).body, token_env=args.token_env)
            if args.dry_run:
                print(client.describe(client.build_request("POST", "/sg_inf/create", body)))
                return 0
            print(client.create(body))
        elif action == "update":
            if _is_update_body(args.source):
                from sim.io import read_yaml_or_json

                if args.current or args.partial:
                    raise ConfigError("--current/--partial apply to a config source, not to an "
                                      "update body", source=args.source)
                patch = parse_update(read_yaml_or_json(args.source), source=args.source).to_request()
                if not _sets_anything(patch):
                    raise ConfigError("the update body sets no field: there is nothing to send",
                                      source=args.source)
            else:
                new = load_body(args.source, args)
                if args.current is not None:
                    current = load_current(args.current, args)
                    where = f"--current {args.current}"
                elif args.dry_run:
                    raise ConfigError("--dry-run of an update needs --current FILE",
                                      source="sim deploy update")
                else:
                    current = _current_from_server(client, args.inf_id)
                    where = f"GET /sg_inf/{args.inf_id}"
                patch = update_plan(new, current, where, args).body
                if not _sets_anything(patch):
                    print(f"no change: the deployment ({where}) already runs this config; "
                          "nothing sent", file=sys.stderr)
                    return 0
            if args.dry_run:
                request = client.build_request("PUT", id_path(args.inf_id), patch)
                print(client.describe(request))
                return 0
            _print_message(client.update(args.inf_id, patch))
        else:
            method = "GET" if action == "get" else "DELETE"
            if args.dry_run:
                print(client.describe(client.build_request(method, id_path(args.inf_id))))
                return 0
            _print_message(client.get(args.inf_id) if action == "get" else client.delete(args.inf_id))
    except (ApiServerError, ApiConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_API_DOWN
    finally:
        client.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``sim deploy serve``: run the reference server in the foreground."""
    from sim.api.server import Faults, serve

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"expected a port 0-65535, got {args.port}", source="--port")
    if args.fail_first < 0:
        raise ConfigError(f"expected a count >= 0, got {args.fail_first}", source="--fail-first")
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not key:
        raise ConfigError(f"the environment variable {args.api_key_env} is not set",
                          source="--api-key-env")
    print(f"reference ScaleGenAI API on http://{args.host}:{args.port} (in memory; Ctrl-C stops)",
          file=sys.stderr)
    serve(args.host, args.port, api_key=key, faults=Faults(fail_next=args.fail_first))
    return 0


def _api_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-url", metavar="URL", help="API base URL (default: $SCALEGEN_API_URL)")
    p.add_argument("--api-key", metavar="KEY",
                   help="API key (default: $SCALEGEN_API_KEY; prefer the variable: flags show in ps)")
    p.add_argument("--auth-header", default="Authorization", metavar="NAME",
                   help="header that carries the key: Authorization (as 'Bearer KEY', default) or "
                   "another name carrying the bare key; the vendor page documents none")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds per attempt to connect, send and read (default 30, at most 3600)")
    p.add_argument("--retries", type=int, default=3, metavar="N",
                   help="further attempts after a 5xx or connection error, with exponential "
                   "back-off (default 3, at most 20)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the request (key and hf_token masked) and send nothing")


def register(sub: Any) -> None:
    """Add this command to the ``sim`` subparsers."""
    deploy = sub.add_parser(
        "deploy",
        help="send a config to the ScaleGenAI inference API (create, update, get, delete) or "
        "serve a local reference API",
    )
    dsub = deploy.add_subparsers(dest="deploy_command", required=True)

    create = dsub.add_parser("create", help="POST /sg_inf/create; prints the new inference id")
    create.add_argument("source", help=SOURCE_HELP)
    add_source_options(create)
    _api_options(create)
    create.set_defaults(func=cmd_deploy)

    update = dsub.add_parser(
        "update", help="PUT /sg_inf/{id}: change a running deployment's worker and autoscaling config"
    )
    update.add_argument("inf_id", metavar="INF_ID", help="the deployment's inference id")
    update.add_argument("source", help=SOURCE_HELP + ", or an update body")
    update.add_argument("--current", metavar="FILE",
                        help="the deployment as it runs now (default: asked from the server with GET)")
    update.add_argument("--partial", action="store_true",
                        help="send the update even if fields it cannot change differ")
    update.add_argument("-q", "--quiet", action="store_true", help="do not list the changes")
    add_source_options(update)
    _api_options(update)
    update.set_defaults(func=cmd_deploy)

    for name, what in (("get", "GET /sg_inf/{id}: the deployment's information"),
                       ("delete", "DELETE /sg_inf/{id}: delete the deployment")):
        p = dsub.add_parser(name, help=what)
        p.add_argument("inf_id", metavar="INF_ID", help="the deployment's inference id")
        _api_options(p)
        p.set_defaults(func=cmd_deploy)

    serve = dsub.add_parser(
        "serve", help="run a local reference server of the four endpoints (in memory; needs the "
        "'server' extra)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--api-key-env", metavar="NAME",
                       help="require the key held by this environment variable (default: no key)")
    serve.add_argument("--fail-first", type=int, default=0, metavar="N",
                       help="answer the first N requests with 503 (to try clients' retries)")
    serve.set_defaults(func=cmd_serve)
