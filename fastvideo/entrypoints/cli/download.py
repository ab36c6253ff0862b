"""``fastvideo download``: fetch a Hugging Face Hub repo into a folder (resumable).

Exit codes: 0 done, 1 error (the message says what to do), 130 cancelled (Ctrl-C; finished
files and partial data are kept, the same command resumes).
"""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("download", help="download a model repo from the Hugging Face Hub (resumable)",
                       description="Download a Hugging Face Hub repo into a folder. Interrupted downloads "
                                   "resume where they stopped; finished files are not fetched again.")
    p.add_argument("--repo-id", required=True, metavar="ID", help="repo id, e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
    p.add_argument("--local-dir", metavar="DIR",
                   help="destination folder (default: the models folder, where fastvideo finds repo ids: "
                        "$FASTVIDEO_MODELS_DIR/<owner>--<name>)")
    p.add_argument("--revision", metavar="R", help="branch, tag or commit (default: main)")
    p.add_argument("--endpoint", metavar="URL", help="hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)")
    p.add_argument("--token", metavar="TOKEN", help="access token (default: $HF_TOKEN or the `hf auth login` token)")
    p.add_argument("--include", action="append", metavar="PATTERN",
                   help="only files matching this glob (repeatable), e.g. --include 'vae/*'")
    p.add_argument("--exclude", action="append", metavar="PATTERN", help="skip files matching this glob (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="list the files and sizes, download nothing")
    p.add_argument("--json", action="store_true",
                   help="machine-readable: one JSON object per progress event on stdout, then a final "
                        '{"kind": "result"|"error"|"cancelled", ...} line (for GUIs running this as a subprocess)')
    p.set_defaults(func=run)


def run(args) -> int:
    from fastvideo.hub.download import (
        DownloadCancelled,
        DownloadError,
        TextProgress,
        download_repo,
        human_bytes,
        plan_download,
        read_manifest,
    )

    local_dir = args.local_dir
    if local_dir is None:
        from fastvideo.configs.registry import models_dir

        local_dir = str(models_dir() / args.repo_id.replace("/", "--"))
    printer = _JsonProgress() if args.json else TextProgress(sys.stderr)
    try:
        plan = plan_download(args.repo_id, args.revision, args.endpoint, args.token)
        if args.dry_run:
            plan = plan.select(args.include, args.exclude)
            done = read_manifest(local_dir).get("files", {})
            for f in plan.files:
                mark = "done" if done.get(f.path, {}).get("etag") == f.etag else ""
                print(f"{f.size:>14,d}  {f.path}  {mark}")
            print(f"{len(plan.files)} files, {human_bytes(plan.total_bytes)} ({args.repo_id}@{plan.commit[:12]}) "
                  f"-> {local_dir}")
            return 0
        out = download_repo(args.repo_id, local_dir, args.revision, args.endpoint, args.token, progress=printer,
                            allow_patterns=args.include, ignore_patterns=args.exclude, plan=plan)
    except (DownloadCancelled, KeyboardInterrupt):
        printer.close()
        if args.json:
            _emit({"kind": "cancelled", "local_dir": str(local_dir)})
        print(f"cancelled: finished files and partial data are kept in {local_dir}; run the same command "
              "to resume", file=sys.stderr)
        return 130
    except DownloadError as exc:
        printer.close()
        if args.json:
            _emit({"kind": "error", "error": type(exc).__name__, "message": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return 1
    printer.close()
    if args.json:
        _emit({"kind": "result", "path": str(out)})
    else:
        print(out)
    return 0


def _emit(obj: dict) -> None:
    import json

    print(json.dumps(obj), flush=True)


class _JsonProgress:
    def __call__(self, p) -> None:
        from dataclasses import asdict

        _emit({**asdict(p), "fraction": p.fraction})

    def close(self) -> None:
        pass
