"""Component parity: our implementation vs a reference, on the same weights and inputs.

``run_parity(model_path, component)`` loads one component of a Diffusers-layout
folder twice -- ours through ``load_module`` (with the arch config's mapping,
or ``rules=``) and the reference with Diffusers / transformers classes -- feeds
both deterministic inputs made from ``seed`` at small shapes derived from the
configs, and compares the outputs.

When an output fails, the *activation summary* runs: both models run again with
forward hooks on corresponding modules, every pair is compared, and the first
diverging module in our execution order is reported.  Correspondence comes from
the arch config's ``param_names_mapping``: each reference module's parameter
names are mapped through the rules, and the reference module is paired with
our module that owns exactly those parameters.  Reference modules whose
parameters are *parts* of one fused parameter (``to_q``/``to_k``/``to_v`` ->
``to_qkv``) are compared by concatenating their outputs on the last dim.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fastvideo.hub.names import check_component_folder, child
from fastvideo.kernels import plain_math
from fastvideo.mapping.rules import compile_rules, map_name, rules_list

# transformer_2: the second (low-noise) expert of a two-expert model (Wan2.2 A14B), checked like the first.
COMPONENTS = ("transformer", "transformer_2", "vae", "text_encoder", "image_encoder", "scheduler")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
FP32_ATOL = 1e-4
FP32_RTOL = 1e-4
# bf16: both sides run bf16 weights with the same fp32 islands; outputs are compared by
# relative L2 (bf16 rounds at ~4e-3 relative; a few layers accumulate to ~1e-2).
BF16_REL_L2 = 2e-2
PROMPTS = ["A red fox runs through fresh snow at sunrise, cinematic.", ""]
SCHEDULER_STEPS = 10


def _tolerance(dtype: str) -> dict[str, float | None]:
    if dtype == "fp32":
        return {"atol": FP32_ATOL, "rtol": FP32_RTOL, "rel_l2_tol": None}
    return {"atol": None, "rtol": None, "rel_l2_tol": BF16_REL_L2}


def compare(ours: torch.Tensor, ref: torch.Tensor, tol: dict[str, float | None]) -> dict[str, Any]:
    """max abs, mean abs, relative L2 and the verdict for one pair of tensors."""
    out: dict[str, Any] = {"max_abs": None, "mean_abs": None, "rel_l2": None, **tol, "passed": False}
    if tuple(ours.shape) != tuple(ref.shape):
        out["detail"] = f"shape {list(ours.shape)} vs reference {list(ref.shape)}"
        return out
    a, b = ours.detach().double(), ref.detach().double()
    diff = (a - b).abs()
    norm = b.norm().item()
    out["max_abs"] = diff.max().item() if diff.numel() else 0.0
    out["mean_abs"] = diff.mean().item() if diff.numel() else 0.0
    out["rel_l2"] = (a - b).norm().item() / norm if norm > 0 else (0.0 if diff.numel() == 0 or out["max_abs"] == 0
                                                                  else math.inf)
    finite = bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())
    if tol["atol"] is not None:
        ok = bool((diff <= tol["atol"] + tol["rtol"] * b.abs()).all())
    else:
        ok = out["rel_l2"] <= tol["rel_l2_tol"]
    out["passed"] = bool(finite and ok)
    return out


# ----------------------------------------------------------------------------- hooks and correspondence


def _first_tensor(value) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for v in value:
            t = _first_tensor(v)
            if t is not None:
                return t
    for attr in ("sample", "last_hidden_state"):
        t = getattr(value, attr, None)
        if isinstance(t, torch.Tensor):
            return t
    return None


def _param_sets(module: torch.nn.Module) -> list[tuple[str, set[str]]]:
    """(module name, its parameters' full names) for every callable module owning parameters, in module order."""
    out = []
    for name, mod in module.named_modules():
        if not name or isinstance(mod, (torch.nn.ModuleList, torch.nn.ModuleDict)):  # containers are never called
            continue
        params = {f"{name}.{p}" for p, _ in mod.named_parameters()}
        if params:
            out.append((name, params))
    return out


def module_correspondence(ours: torch.nn.Module, ref: torch.nn.Module,
                          mapping: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Pairs (our module, [reference module(s)]); several reference modules = fused parts in order."""
    rules = compile_rules(mapping)
    ours_by_set: dict[frozenset, list[str]] = {}
    for name, params in _param_sets(ours):
        ours_by_set.setdefault(frozenset(params), []).append(name)
    ours_names = {n for names in ours_by_set.values() for n in names}

    ref_by_set: dict[frozenset, list[str]] = {}
    fused: dict[str, dict[int, str]] = {}
    fused_count: dict[str, int] = {}
    for name, params in _param_sets(ref):
        mapped: set[str] = set()
        parts: dict[str, set[int]] = {}
        counts: dict[str, int] = {}
        all_parts = True
        for p in params:
            target, rule = map_name(p, rules)
            mapped.add(target)
            if rule is not None and rule.is_merge:
                parts.setdefault(target, set()).add(rule.merge_index)  # type: ignore[arg-type]
                counts[target] = rule.merge_count  # type: ignore[assignment]
            else:
                all_parts = False
        if parts:
            owners = {t.rpartition(".")[0] for t in parts}
            indices = {i for s in parts.values() for i in s}
            if all_parts and len(owners) == 1 and len(indices) == 1:
                # One part of a fused parameter (to_k of to_qkv): compared by concatenation.
                owner = owners.pop()
                if owner in ours_names:
                    fused.setdefault(owner, {})[indices.pop()] = name
                    fused_count[owner] = next(iter(counts.values()))
                continue
            if any(len(s) != counts[t] for t, s in parts.items()):
                continue  # holds some but not all parts of a fused parameter: no counterpart
        ref_by_set.setdefault(frozenset(mapped), []).append(name)

    pairs: list[tuple[str, list[str]]] = []
    for key, ref_names in ref_by_set.items():
        ours_list = ours_by_set.get(key)
        if not ours_list:
            continue
        if len(ours_list) != len(ref_names):
            # e.g. Diffusers' GELU(proj) wrapper and its proj both map onto our fc_in: pair the deepest.
            depth = lambda n: n.count(".")  # noqa: E731
            ours_list = sorted(ours_list, key=depth, reverse=True)
            ref_names = sorted(ref_names, key=depth, reverse=True)
        for o, r in zip(ours_list, ref_names):
            pairs.append((o, [r]))
    for owner, parts_by_index in fused.items():
        if len(parts_by_index) == fused_count[owner]:
            pairs.append((owner, [parts_by_index[i] for i in range(fused_count[owner])]))
    return pairs


class ActivationRecorder:
    """Forward hooks on named modules; keeps each call's (first tensor) output and the firing order."""

    def __init__(self, model: torch.nn.Module, names: set[str]):
        self.outputs: dict[str, list[torch.Tensor]] = {}
        self.order: list[str] = []
        self.handles = []
        for name, mod in model.named_modules():
            if name in names:
                self.handles.append(mod.register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(module, args, output):
            t = _first_tensor(output)
            if t is None:
                return
            if name not in self.outputs:
                self.order.append(name)
            self.outputs.setdefault(name, []).append(t.detach().clone())
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def activation_summary(ours_model, ref_model, pairs, run_ours: Callable[[], Any], run_ref: Callable[[], Any],
                       tol) -> list[dict[str, Any]]:
    """Run both with hooks on corresponding modules; one entry per pair, in our execution order."""
    ours_rec = ActivationRecorder(ours_model, {o for o, _ in pairs})
    ref_rec = ActivationRecorder(ref_model, {r for _, rs in pairs for r in rs})
    try:
        with torch.no_grad(), plain_math():  # no fused kernels: every module is called, every hook fires
            run_ours()
            run_ref()
    finally:
        ours_rec.remove()
        ref_rec.remove()
    by_ours = {o: rs for o, rs in pairs}
    entries = []
    for o in ours_rec.order:
        rs = by_ours[o]
        if not all(r in ref_rec.outputs for r in rs):
            continue
        ours_calls = ours_rec.outputs[o]
        ref_calls = [torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
                     for parts in zip(*(ref_rec.outputs[r] for r in rs))]
        worst: dict[str, Any] = {"max_abs": 0.0, "rel_l2": 0.0, "passed": len(ours_calls) == len(ref_calls)}
        for a, b in zip(ours_calls, ref_calls):
            c = compare(a, b, tol)
            worst["passed"] = worst["passed"] and c["passed"]
            for k in ("max_abs", "rel_l2"):
                worst[k] = None if c[k] is None or worst[k] is None else max(worst[k], c[k])
        entries.append({"ours": o, "reference": "+".join(rs), "max_abs": worst["max_abs"],
                        "rel_l2": worst["rel_l2"], "passed": bool(worst["passed"])})
    return entries


# ----------------------------------------------------------------------------- components


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class _Case:
    """One component: load both sides, make inputs, run each (returns name -> tensor)."""

    def __init__(self, info, component: str, folder: Path, torch_dtype: torch.dtype, seed: int, rules):
        self.info, self.component, self.folder = info, component, folder
        self.dtype, self.seed, self.rules = torch_dtype, seed, rules
        self.ours = self.ref = None
        self.mapping: dict[str, Any] = {}

    def load_ours_module(self):
        from fastvideo.models.loader.component_loader import load_module

        cc = self.info.component_class(self.component)
        module, arch, _ = load_module(self.folder, cc, component=self.component, dtype=self.dtype, rules=self.rules)
        self.mapping = dict(arch.param_names_mapping)
        return module


class _Transformer(_Case):
    def load(self, ref_lib):
        self.ours = self.load_ours_module()
        self.ref = ref_lib.load_transformer(self.folder, self.dtype)
        cfg = self.ours.config
        g = _generator(self.seed)
        pt, ph, pw = cfg.patch_size
        # I2V: Diffusers splits the context as [image tokens | last 512 text tokens], so text is 512 long.
        text_len = 512 if cfg.image_dim is not None else 16
        self.inputs = {
            "latents": torch.randn(1, cfg.in_channels, 3 * pt, 4 * ph, 4 * pw, generator=g).to(self.dtype),
            "timestep": torch.rand(1, generator=g) * 1000.0,
            "text": torch.randn(1, text_len, cfg.text_dim, generator=g).to(self.dtype),
        }
        if cfg.image_dim is not None:
            self.inputs["image"] = torch.randn(1, 257, cfg.image_dim, generator=g).to(self.dtype)

    @torch.no_grad()
    def run_ours(self):
        i = self.inputs
        return {"noise_pred": self.ours(i["latents"], i["timestep"], i["text"], i.get("image"))}

    def run_ref(self, ref_lib):
        return ref_lib.run_transformer(self.ref, self.inputs)


class _VAE(_Case):
    def load(self, ref_lib):
        self.ours = self.load_ours_module()
        self.ref = ref_lib.load_vae(self.folder, self.dtype)
        cfg = self.ours.config if hasattr(self.ours, "config") else self.ours.arch_config
        s = cfg.spatial_compression_ratio
        t = cfg.temporal_compression_ratio
        g = _generator(self.seed)
        self.inputs = {
            "video": (torch.rand(1, 3, 2 * t + 1, 2 * s, 2 * s, generator=g) * 2 - 1).to(self.dtype),
            "latents": torch.randn(1, cfg.z_dim, 3, 2, 2, generator=g).to(self.dtype),
        }

    @torch.no_grad()
    def run_ours(self):
        return {"encode.mean": self.ours.encode(self.inputs["video"]).mean,
                "decode": self.ours.decode(self.inputs["latents"])}

    def run_ref(self, ref_lib):
        return ref_lib.run_vae(self.ref, self.inputs)


class _TextEncoder(_Case):
    def load(self, ref_lib):
        from transformers import AutoTokenizer

        self.ours = self.load_ours_module()
        self.ref = ref_lib.load_text_encoder(self.folder, self.dtype)
        tok_dir = self.folder.parent / "tokenizer"
        check_component_folder(tok_dir)  # no custom code: transformers must never prompt or import from the folder
        self.tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), trust_remote_code=False, local_files_only=True)
        from fastvideo.configs.models.encoders.t5 import T5EncoderArchConfig

        self.max_length = T5EncoderArchConfig.text_len

    def run_ours(self):
        from fastvideo.models.encoders.t5 import encode_prompts

        return {"prompt_embeds": encode_prompts(self.tokenizer, self.ours, PROMPTS, max_length=self.max_length,
                                                device="cpu", dtype=self.dtype)}

    def run_ref(self, ref_lib):
        return ref_lib.run_text_encoder(self.ref, self.tokenizer, PROMPTS, self.max_length, self.dtype)


class _ImageEncoder(_Case):
    def load(self, ref_lib):
        import numpy as np
        from PIL import Image
        from transformers import CLIPImageProcessor

        self.ours = self.load_ours_module()
        self.ref = ref_lib.load_image_encoder(self.folder, self.dtype)
        proc_dir = self.folder.parent / "image_processor"
        check_component_folder(proc_dir)
        self.processor = CLIPImageProcessor.from_pretrained(str(proc_dir), trust_remote_code=False,
                                                            local_files_only=True)
        rng = np.random.default_rng(self.seed)
        self.images = [Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)),
                       Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))]

    def run_ours(self):
        from fastvideo.models.encoders.clip import encode_image

        return {"image_embeds": encode_image(self.processor, self.ours, self.images, device="cpu")}

    def run_ref(self, ref_lib):
        return ref_lib.run_image_encoder(self.ref, self.processor, self.images)


class _Scheduler(_Case):
    def load(self, ref_lib):
        from fastvideo.models.loader.component_loader import load_component

        self.ours = load_component(str(self.info.path), "scheduler")
        self.ref = ref_lib.load_scheduler(self.folder, self.info.components["scheduler"][1])
        g = _generator(self.seed)
        self.inputs = {"sample": torch.randn(1, 4, 2, 8, 8, generator=g), "steps": SCHEDULER_STEPS}
        self.direction = torch.randn(1, 4, 2, 8, 8, generator=g)

    def fake_model(self, x: torch.Tensor, t) -> torch.Tensor:
        """A fixed 'model': velocity depending on the sample and the timestep."""
        s = float(t) / 1000.0
        return 0.5 * x + s * self.direction - 0.25 * torch.tanh(x)

    def _trajectory(self, sched, step):
        sched.set_timesteps(self.inputs["steps"], device="cpu")
        x = self.inputs["sample"].clone()
        out = [torch.as_tensor(sched.timesteps).to(torch.float64)]
        for t in sched.timesteps:
            x = step(sched, x, t)
            out.append(x)
        return out

    def run_ours(self):
        return self._as_outputs(self._trajectory(self.ours, lambda s, x, t: s.step(self.fake_model(x, t), t, x)))

    def run_ref(self, ref_lib):
        return self._as_outputs(ref_lib.run_scheduler(self.ref, self.inputs, self.fake_model))

    @staticmethod
    def _as_outputs(traj: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"timesteps": traj[0], "trajectory": torch.stack(traj[1:])}


CASES = {"transformer": _Transformer, "transformer_2": _Transformer, "vae": _VAE, "text_encoder": _TextEncoder,
         "image_encoder": _ImageEncoder, "scheduler": _Scheduler}


def cases_for(family: str) -> dict[str, type[_Case]]:
    """A family's parity cases: ``fastvideo.parity.family_<family>.CASES`` when the family has that module
    (characters that cannot be in a module name as ``_``), else the defaults above (the Wan families')."""
    import importlib
    import re

    name = "fastvideo.parity.family_" + re.sub(r"\W", "_", family)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return CASES
    return module.CASES


def _versions(ref_lib) -> dict[str, str | None]:
    import transformers

    import fastvideo

    return {"fastvideo": fastvideo.__version__, "torch": torch.__version__, "diffusers": ref_lib.version(),
            "transformers": transformers.__version__, "python": platform.python_version()}


def run_parity(
    model_path: str,
    component: str,
    reference: str = "diffusers",
    dtype: str = "fp32",
    seed: int = 0,
    progress: Callable[[dict[str, Any]], None] | None = None,
    rules: dict[str, Any] | list | None = None,
) -> dict[str, Any]:
    """Compare our ``component`` of a Diffusers-layout model with the reference; a JSON-ready dict.

    ``rules`` replaces the arch config's ``param_names_mapping`` for loading *ours*
    (e.g. a candidate or deliberately broken mapping); the module correspondence
    of the activation summary always comes from the arch config's mapping.  Rules are
    ordered (first match wins): pass a list of ``(pattern, replacement)`` pairs (JSON:
    ``[[pattern, replacement], ...]``) or a dict; the result echoes them as ``rules``.
    """
    from fastvideo.configs.registry import resolve_model

    if reference != "diffusers":
        raise ValueError(f"reference {reference!r} is not supported (only 'diffusers')")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    from fastvideo.parity import reference_diffusers as ref_lib

    ref_lib.require_diffusers()

    def say(stage: str, **kw) -> None:
        if progress is not None:
            progress({"stage": stage, "component": component, **kw})

    info = resolve_model(model_path)
    cases = cases_for(info.family)
    if component not in cases:
        raise ValueError(f"component must be one of {', '.join(cases)} for a {info.family} model, got {component!r}")
    info.component_class(component)  # clear error if the folder has no such component
    effective_dtype = "fp32" if component == "scheduler" else dtype
    tol = _tolerance(effective_dtype)
    if rules is not None:
        rules = rules_list(rules)  # ordered (pattern, value) pairs, merge values as tuples
        compile_rules(rules)  # a bad rule fails here, naming it
    folder = child(info.path, component, "component", info.path / "model_index.json")
    check_component_folder(folder)  # before the reference library reads it
    case = cases[component](info, component, folder, DTYPES[effective_dtype], seed, rules)
    torch.manual_seed(seed)
    say("load")
    case.load(ref_lib)
    say("run", side="ours")
    ours_out = case.run_ours()
    say("run", side="reference")
    ref_out = case.run_ref(ref_lib)
    outputs = []
    for name, ref_t in ref_out.items():
        entry = {"name": name, **compare(ours_out[name], ref_t, tol)}
        entry.pop("detail", None)
        outputs.append(entry)
    passed = all(o["passed"] for o in outputs)

    modules: list[dict[str, Any]] = []
    if not passed:
        say("activation_summary")
        if component == "scheduler":
            modules = _scheduler_steps(ours_out, ref_out, tol)
        else:
            pairs = module_correspondence(case.ours, case.ref, case.mapping)
            modules = activation_summary(case.ours, case.ref, pairs, case.run_ours, lambda: case.run_ref(ref_lib), tol)
    first = next((m for m in modules if not m["passed"]), None)
    result = {
        "component": component,
        "reference": reference,
        "dtype": effective_dtype,
        "seed": seed,
        "versions": _versions(ref_lib),
        "passed": passed,
        "outputs": outputs,
        "first_divergent": None if first is None else {"module": first["ours"], "ours": first["ours"],
                                                       "reference": first["reference"]},
        "modules": modules,
        "rules": None if rules is None else [[p, list(v) if isinstance(v, tuple) else v] for p, v in rules],
    }
    say("done", passed=passed)
    return result


def _scheduler_steps(ours_out, ref_out, tol) -> list[dict[str, Any]]:
    entries = []
    for i, (a, b) in enumerate(zip(ours_out["trajectory"], ref_out["trajectory"])):
        c = compare(a, b, tol)
        entries.append({"ours": f"step {i}", "reference": f"step {i}", "max_abs": c["max_abs"],
                        "rel_l2": c["rel_l2"], "passed": c["passed"]})
    return entries
