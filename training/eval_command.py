"""``xalign-train eval``: its options (the model, the tasks, the report's files) and the run.

The model is a transformers folder (``training/evaluate/encoder.py``) or a published ONNX model of a store
(``runtime/onnx_encoder.py``); the tasks are Tatoeba (``tatoeba.py``), BUCC-2018 (``bucc.py``) and XNLI
retrieval (``xnli_retrieval.py``) of ``training/evaluate/``. Every data file is read before the model loads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import get_args

from xalign.modelstore.refs import parse_ref
from xalign.training.data.xnli import XNLI_LANGS
from xalign.training.evaluate.bucc import cap_bucc, evaluate_bucc, read_bucc
from xalign.training.evaluate.encoder import Encoder, Pooling
from xalign.training.evaluate.report import EvalReport, evaluation_dict, render_markdown, write_json
from xalign.training.evaluate.tatoeba import DEFAULT_LANGS, evaluate_tatoeba, read_tatoeba
from xalign.training.evaluate.xnli_retrieval import evaluate_xnli, read_xnli_sentences


class EvalUsageError(ValueError):
    """A wrong combination of ``eval`` options (``training/cli.py`` reports it as one line, exit code 2)."""


def add_eval_options(p: argparse.ArgumentParser) -> None:
    """The options of ``eval``: the model, the tasks and where the report goes."""
    _add_model_options(p)
    tasks = p.add_argument_group("tasks (at least one)")
    tasks.add_argument(
        "--tatoeba-dir",
        type=Path,
        metavar="DIR",
        help="folder with tatoeba.{xxx}-eng.{xxx} and tatoeba.{xxx}-eng.eng files",
    )
    tasks.add_argument(
        "--langs",
        metavar="XXX,...",
        default=",".join(DEFAULT_LANGS),
        help=f"comma-separated Tatoeba languages (default: {','.join(DEFAULT_LANGS)})",
    )
    tasks.add_argument(
        "--bucc-dir", type=Path, metavar="DIR", help="folder with BUCC-2018 {pair}.sample.{src,tgt,gold} files"
    )
    tasks.add_argument("--bucc-pair", default="de-en", metavar="SRC-TGT", help="BUCC language pair (default: de-en)")
    tasks.add_argument(
        "--bucc-max",
        type=int,
        metavar="N",
        help="at most N sentences per BUCC side for a quick run; every gold pair is kept",
    )
    _add_xnli_options(tasks)
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, metavar="FILE", help="write the markdown report here (it is always printed)")
    out.add_argument(
        "--json", type=Path, metavar="FILE", help="write {task: {metric: value}} (the manifest's evaluation field) here"
    )


def _add_model_options(p: argparse.ArgumentParser) -> None:
    model = p.add_argument_group("model (give --model-dir, or --store with --model)")
    model.add_argument(
        "--model-dir", type=Path, metavar="DIR", help="a transformers folder (save_pretrained) to evaluate"
    )
    model.add_argument(
        "--store", type=Path, metavar="DIR", help="a model store folder, to evaluate a published ONNX model"
    )
    model.add_argument(
        "--model", metavar="NAME[:VERSION|@ALIAS]", help="model in --store (a bare name means its default alias)"
    )
    model.add_argument(
        "--variant", choices=["fp32", "int8"], default=None, help="ONNX variant of the store model (default: fp32)"
    )
    model.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="onnxruntime intra-op threads of the store model (default: its own)",
    )
    hf = p.add_argument_group("transformers folder options (with --model-dir)")
    hf.add_argument("--pooling", choices=get_args(Pooling), default="mean", help="pooling (default: mean)")
    hf.add_argument(
        "--text-prefix",
        default="query: ",
        metavar="TEXT",
        help="prepended to every text (default: 'query: ', as E5 wants)",
    )
    hf.add_argument(
        "--max-seq-length", type=int, default=512, metavar="N", help="truncate to this many tokens (default: 512)"
    )
    hf.add_argument("--batch-size", type=int, default=32, metavar="N", help="texts per forward pass (default: 32)")
    hf.add_argument(
        "--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: cuda when available, else cpu)"
    )
    hf.add_argument(
        "--frozen-cache",
        type=Path,
        metavar="DIR",
        help="keep the first --frozen-layers layers' states of each text here and reuse them: models trained on "
        "the same frozen bottom (train_top_layers) then run only their top layers",
    )
    hf.add_argument(
        "--frozen-layers", type=int, default=0, metavar="N", help="layers the --frozen-cache holds (with it only)"
    )


def _add_xnli_options(tasks: argparse._ArgumentGroup) -> None:
    tasks.add_argument(
        "--xnli-dir",
        type=Path,
        metavar="DIR",
        help="folder with XNLI {split}-{lang}.tsv files: 1-NN retrieval of every language against English",
    )
    tasks.add_argument(
        "--xnli-split", choices=["dev", "test"], default="test", help="XNLI split to retrieve in (default: test)"
    )
    tasks.add_argument(
        "--xnli-langs",
        metavar="XX,...",
        default=",".join(XNLI_LANGS),
        help="comma-separated XNLI languages, English among them or not (default: all 15)",
    )
    tasks.add_argument(
        "--xnli-max", type=int, metavar="N", help="only the first N sentences per language, for a quick run"
    )


def _check_eval_args(args: argparse.Namespace) -> None:
    if (args.model_dir is None) == (args.store is None):
        raise EvalUsageError("give either --model-dir or --store (with --model), not both and not neither")
    if args.store is not None and not args.model:
        raise EvalUsageError("--store needs --model NAME[:VERSION|@ALIAS]")
    if args.model_dir is not None and (args.model or args.variant or args.threads):
        raise EvalUsageError("--model, --variant and --threads apply to --store models only")
    if (args.frozen_cache is None) != (args.frozen_layers == 0):
        raise EvalUsageError("--frozen-cache and --frozen-layers go together")
    if args.frozen_cache is not None and args.model_dir is None:
        raise EvalUsageError("--frozen-cache applies to --model-dir models only")
    if args.tatoeba_dir is None and args.bucc_dir is None and args.xnli_dir is None:
        raise EvalUsageError("nothing to evaluate: give --tatoeba-dir, --bucc-dir and/or --xnli-dir")
    for name in ("bucc_max", "xnli_max"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise EvalUsageError(f"--{name.replace('_', '-')} must be positive")


def load_encoder(args: argparse.Namespace) -> Encoder:
    """The encoder ``eval`` measures: a transformers folder, or a store model through ``service.engine``."""
    if args.model_dir is not None:
        from xalign.training.evaluate.encoder import TransformersEncoder  # noqa: PLC0415 - imports torch

        return TransformersEncoder(
            args.model_dir,
            pooling=args.pooling,
            text_prefix=args.text_prefix,
            max_seq_length=args.max_seq_length,
            batch_size=args.batch_size,
            device=args.device,
            frozen_cache=args.frozen_cache,
            frozen_layers=args.frozen_layers,
        )
    parse_ref(args.model)  # a malformed reference fails before anything is loaded
    from xalign.runtime.onnx_encoder import OnnxEncoder  # noqa: PLC0415 - onnxruntime only when asked

    encoder: Encoder = OnnxEncoder.from_store(
        args.store, args.model, variant=args.variant or "fp32", threads=args.threads
    )
    return encoder


def _split_langs(text: str) -> list[str]:
    return [lang.strip() for lang in text.split(",") if lang.strip()]


def cmd_eval(args: argparse.Namespace) -> int:
    """``xalign-train eval``: read every data file first, then encode, score, print and write the report."""
    _check_eval_args(args)
    langs = _split_langs(args.langs)
    xnli = None
    if args.xnli_dir is not None:
        xnli = read_xnli_sentences(args.xnli_dir, args.xnli_split, _split_langs(args.xnli_langs), args.xnli_max)
    if args.tatoeba_dir is not None:
        for lang in langs:  # fail on a missing or misaligned file before loading any model
            read_tatoeba(args.tatoeba_dir, lang)
    bucc = read_bucc(args.bucc_dir, args.bucc_pair) if args.bucc_dir is not None else None
    notes: list[str] = []
    if bucc is not None and args.bucc_max is not None:
        bucc = cap_bucc(bucc, args.bucc_max)
        notes.append(
            f"BUCC capped at {args.bucc_max} sentences per side (all {len(bucc.gold)} gold pairs kept): "
            f"{len(bucc.src_ids)} + {len(bucc.tgt_ids)} sentences; not comparable with full-sample F1."
        )
    encoder = load_encoder(args)
    report = EvalReport(
        model=encoder.name,
        tatoeba=evaluate_tatoeba(encoder, args.tatoeba_dir, langs) if args.tatoeba_dir is not None else [],
        bucc={bucc.pair: evaluate_bucc(encoder, bucc)} if bucc is not None else {},
        xnli={xnli.split: evaluate_xnli(encoder, xnli)} if xnli is not None else {},
        notes=notes,
    )
    markdown = render_markdown(report)
    sys.stdout.write(markdown)
    if args.out is not None:
        args.out.write_text(markdown, encoding="utf-8")
    if args.json is not None:
        write_json(args.json, evaluation_dict(report))
    return 0
