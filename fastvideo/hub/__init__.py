"""Hugging Face Hub downloads (torch- and Qt-free): ``plan_download`` and ``download_repo``."""

from fastvideo.hub.download import (
    AuthenticationError,
    DiskSpaceError,
    DownloadCancelled,
    DownloadError,
    DownloadPlan,
    DownloadProgress,
    EntryNotFoundError,
    GatedRepoError,
    HubOfflineError,
    IntegrityError,
    RepoFile,
    RepoNotFoundError,
    RevisionNotFoundError,
    TextProgress,
    UnsafeFileNameError,
    check_file_names,
    download_repo,
    format_progress,
    plan_download,
    read_manifest,
)

__all__ = [
    "AuthenticationError", "DiskSpaceError", "DownloadCancelled", "DownloadError", "DownloadPlan",
    "DownloadProgress", "EntryNotFoundError", "GatedRepoError", "HubOfflineError", "IntegrityError",
    "RepoFile", "RepoNotFoundError", "RevisionNotFoundError", "TextProgress", "UnsafeFileNameError",
    "check_file_names", "download_repo", "format_progress", "plan_download", "read_manifest",
]
