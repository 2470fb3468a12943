"""Saving a loaded pipeline as a directory, and uploading it to the Hugging Face Hub.

A pipeline is loaded from a directory (:mod:`l2s.hub`), so saving it copies that directory's files as
they were loaded (the weights byte for byte), writes ``pipeline.yaml`` from the pipeline's spec and
keeps its model card (``README.md``), writing one when the directory had none. Uploading saves into a
temporary folder and hands it to ``huggingface_hub.HfApi.upload_folder``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union

from l2s.hub import PIPELINE_FILE, push_folder_to_hub
from l2s.io.atomic import atomic_dir, check_replaceable
from l2s.pipeline.card import CARD_FILE, write_card
from l2s.pipeline.spec import PipelineSpec, write_spec

#: names in a loaded directory that are not part of the pipeline (the hub cache's and VCS bookkeeping)
_SKIPPED = (".cache", ".git", ".gitattributes", ".huggingface")


def save_pipeline(root: Union[str, Path], spec: PipelineSpec, out: Union[str, Path]) -> Path:
    """Write the pipeline loaded from ``root`` (with settings ``spec``) to ``out``, atomically.

    Args:
        root: the directory the pipeline was loaded from.
        spec: its settings (written as ``out/pipeline.yaml``).
        out: destination; an earlier pipeline directory there is replaced, anything else is refused.

    Returns:
        ``out``, loadable by :meth:`~l2s.pipeline.Lip2Speech.from_pretrained`.

    Raises:
        InputError: ``out`` is a file or a folder that is not a pipeline directory.
    """
    root, out = Path(root), Path(out)
    check_replaceable(out, PIPELINE_FILE)
    with atomic_dir(out) as tmp:
        for item in sorted(root.iterdir()):
            if item.name in _SKIPPED:
                continue
            if item.is_dir():  # hub snapshots are symlinks into the blob store: copy the files they point to
                shutil.copytree(item, tmp / item.name, ignore=shutil.ignore_patterns(*_SKIPPED))
            else:
                shutil.copyfile(item, tmp / item.name)
        write_spec(tmp, spec)
        if not (tmp / CARD_FILE).is_file():
            write_card(tmp, spec)
    return out


def push_pipeline(root: Union[str, Path], spec: PipelineSpec, repo_id: str, token: Optional[Union[str, bool]] = None,
                  private: Optional[bool] = None, branch: Optional[str] = None, create_pr: bool = False,
                  commit_message: str = "Upload l2s pipeline") -> str:
    """Save the pipeline into a temporary folder and upload it to the model repo ``repo_id``.

    Returns:
        The URL of the commit.

    Raises:
        ModelError: the Hub refused or could not be reached (one line saying which).
    """
    with tempfile.TemporaryDirectory(prefix="l2s-push-") as scratch:
        folder = save_pipeline(root, spec, Path(scratch) / "pipeline")
        return push_folder_to_hub(folder, repo_id, token=token, private=private, branch=branch,
                                  commit_message=commit_message, create_pr=create_pr)
