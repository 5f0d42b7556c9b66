"""fspo's PyTorch trainer: one FSPO stage over episodes staged by `fspo train --engine torch`.

The stage folder (written by fspo) holds
    plan.json            the stage: loss, beta, optimizer settings, the learning rate of every step
    init/                the initial model as a Hugging Face folder (config.json + model.safetensors)
    episodes-NNNNN.jsonl the episodes in the order the steps visit them, one JSON object per line:
                         {"step", "prompt", "chosen", "rejected", "ref": [chosen, rejected]} (token ids;
                         "ref" is the frozen reference's summed log-probs, computed once by fspo)
and the trainer writes
    out/                 the trained model as a Hugging Face folder, renamed into place when complete
    metrics.jsonl        one line per step: loss, lr, grad_norm, reward accuracy and margin
    state.pt             weights and optimizer state every checkpoint_every steps (resume)

Losses (METHOD.md section 3), on log-probs summed over completion tokens:
    sft:       mean negative log-likelihood per preferred-completion token over the whole batch
    ipo:       (h - 1/(2 beta))^2,  h = [log pi(y_w) - log ref(y_w)] - [log pi(y_l) - log ref(y_l)]
    ipo_norm:  ipo with each log-ratio divided by its completion's length
    dpo, cdpo: -log sigmoid(beta h), with label smoothing for cdpo
Each rank scores its share of a step's episodes; the loss is scaled so that the gradient averaged over
ranks is the gradient of the whole batch's loss.

The model: transformers' AutoModelForCausalLM when transformers is installed (FSPO_TORCH_MODEL=own
keeps the trainer's own), else the trainer's own Llama / Qwen2 / Qwen3 module (hfmodel.py, written
beside this file by fspo), whose parameter names are the Hugging Face folder's.

Sharding: FullyShardedDataParallel (one unit per decoder layer) where PyTorch runs it — CUDA, or CPU
from PyTorch 2.1 —, else DistributedDataParallel with the optimizer state sharded over the ranks
(ZeroRedundancyOptimizer). The optimizer is torch.optim.AdamW with weight decay on matrices only.

Run by fspo with the environment torchrun gives each worker (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT); across nodes:
    torchrun --nnodes N --node_rank R --nproc_per_node P --master_addr HOST --master_port PORT \
        trainer.py --stage-dir RUN/torch
"""
import argparse
import dataclasses
import json
import math
import os
import sys
import time


def _compat_python311():
    """PyTorch before 2.0 declares dataclass fields whose defaults are unhashable dataclass
    instances, which Python 3.11 rejects on import of torch.distributed's sharding modules
    (ValueError: mutable default ... use default_factory). Let such defaults hash by identity."""
    if sys.version_info < (3, 11):
        return
    orig = dataclasses._get_field

    def get_field(cls, name, typ, *rest):
        d = cls.__dict__.get(name)
        if isinstance(d, dataclasses.Field) and d.default is not dataclasses.MISSING and type(d.default).__hash__ is None:
            type(d.default).__hash__ = object.__hash__
        return orig(cls, name, typ, *rest)

    dataclasses._get_field = get_field


_compat_python311()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from hfmodel import CausalLM, build_model, load_folder, save_safetensors  # noqa: E402


# ---------------------------------------------------------------- losses


def pair_loss(kind, beta, smoothing, pol_c, pol_r, ref_c, ref_r, len_c, len_r):
    """(loss, margin beta*h) per pair, as tensors."""
    if kind == "ipo_norm":
        h = (pol_c - ref_c) / len_c - (pol_r - ref_r) / len_r
    else:
        h = (pol_c - ref_c) - (pol_r - ref_r)
    if kind in ("ipo", "ipo_norm"):
        loss = (h - 1 / (2 * beta)) ** 2
    elif kind == "dpo":
        loss = F.softplus(-beta * h)
    elif kind == "cdpo":
        loss = (1 - smoothing) * F.softplus(-beta * h) + smoothing * F.softplus(beta * h)
    else:
        raise ValueError(f"plan.json: objective {kind!r} is not ipo, ipo_norm, dpo or cdpo")
    return loss, beta * h


def check_episodes(eps, vocab, positions):
    for e in eps:
        ids = e["prompt"] + e["chosen"] + e["rejected"]
        bad = [x for x in ids if not (isinstance(x, int) and 0 <= x < vocab)]
        if bad:
            raise ValueError(f"{e['where']}: token id {bad[0]} is outside the model's vocabulary of {vocab}")
        if not e["prompt"] or not e["chosen"]:
            raise ValueError(f"{e['where']}: empty prompt or chosen completion")
        if len(e["prompt"]) + max(len(e["chosen"]), len(e["rejected"])) > positions:
            raise ValueError(f"{e['where']}: longer than the model's {positions} positions")


def token_logprobs(model, tokens, select):
    """Log-probs at select through the wrapped module's own call (DDP and FSDP hooks run): fspo's
    CausalLM takes select; a transformers model returns the logits of every position."""
    if not getattr(model, "fspo_hf", False) and not getattr(getattr(model, "module", None), "fspo_hf", False):
        return model(tokens, select)
    rows, pos = select
    logits = model(input_ids=tokens).logits[rows, pos]
    return torch.log_softmax(logits.float(), dim=-1).gather(1, tokens[rows, pos + 1][:, None])[:, 0]


def score(model, device, seqs):
    """Summed log-probs of each (prompt, completion): one padded batch, causal attention (right
    padding never reaches a scored position)."""
    T = max(len(p) + len(c) for p, c in seqs)
    tokens = torch.zeros((len(seqs), T), dtype=torch.long)
    rows, pos, owner = [], [], []
    for i, (p, c) in enumerate(seqs):
        tokens[i, : len(p) + len(c)] = torch.tensor(p + c)
        rows += [i] * len(c)
        pos += range(len(p) - 1, len(p) + len(c) - 1)
        owner += [i] * len(c)
    tokens = tokens.to(device)
    lp = token_logprobs(model, tokens, (torch.tensor(rows, device=device), torch.tensor(pos, device=device)))
    return torch.zeros(len(seqs), device=device, dtype=lp.dtype).index_add(0, torch.tensor(owner, device=device), lp)


# ---------------------------------------------------------------- data


def episodes_by_step(stage_dir, plan, start):
    """Yields (step, [episode, …]) in step order from the shards, from step start on; one step in memory."""
    cur, batch = None, []
    for shard in plan["shards"]:
        if shard["last_step"] < start:
            continue
        path = os.path.join(stage_dir, shard["file"])
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                try:
                    ep = json.loads(line)
                    s = ep["step"]
                except (ValueError, KeyError) as e:
                    raise ValueError(f"{path}:{lineno}: {e}") from None
                if s < start:
                    continue
                ep["where"] = f"{path}:{lineno}"
                if s != cur:
                    if cur is not None:
                        yield cur, batch
                    cur, batch = s, []
                batch.append(ep)
    if cur is not None:
        yield cur, batch


# ---------------------------------------------------------------- training


def log(msg):
    print(f"[rank {dist.get_rank()}] {msg}", file=sys.stderr, flush=True)


def wrap(model, device, world, weight_decay, layer_cls):
    """(the module to call, sharding name)."""
    version = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2] if x.isdigit())
    fsdp_ok = device.type == "cuda" or version >= (2, 1)
    if fsdp_ok and os.environ.get("FSPO_TORCH_SHARDING", "fsdp") == "fsdp":
        import functools

        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

        policy = functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={layer_cls})
        extra = {"device_id": device} if device.type == "cuda" else {}
        if version >= (2, 0):
            extra["use_orig_params"] = True  # per-parameter weight decay groups
        elif weight_decay > 0:
            raise ValueError("plan.json: weight_decay > 0 under FSDP needs PyTorch >= 2.0 (use_orig_params: decay on matrices only)")
        return FSDP(model, auto_wrap_policy=policy, **extra), "fsdp"
    if world == 1:
        return model, "single process"
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model), "ddp + zero optimizer state"


def make_optimizer(module, plan, sharding):
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if p.dim() >= 2], "weight_decay": plan["weight_decay"]},
        {"params": [p for n, p in named if p.dim() < 2], "weight_decay": 0.0},
    ]
    kw = dict(lr=plan["lr"][0] if plan["lr"] else 0.0, betas=tuple(plan["betas"]), eps=plan["eps"])
    if sharding.startswith("ddp"):
        from torch.distributed.optim import ZeroRedundancyOptimizer

        return ZeroRedundancyOptimizer(groups, optimizer_class=torch.optim.AdamW, **kw)
    return torch.optim.AdamW(groups, **kw)


def clip(module, model, sharding, max_norm):
    """Global gradient L2 norm before clipping (coef max_norm/(norm+1e-6) when below 1)."""
    if sharding == "fsdp":
        return float(module.clip_grad_norm_(max_norm if max_norm > 0 else float("inf")))
    return float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm if max_norm > 0 else float("inf")))


def full_state(module, model, sharding):
    if sharding != "fsdp":
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    with FSDP.state_dict_type(module, StateDictType.FULL_STATE_DICT, FullStateDictConfig(offload_to_cpu=True, rank0_only=True)):
        return {k.replace("_fsdp_wrapped_module.", ""): v for k, v in module.state_dict().items()}


def save_state(path, module, model, opt, sharding, step):
    """Weights and optimizer state after step steps (rank 0 writes; temp file and rename)."""
    if sharding == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        optim_state = FSDP.full_optim_state_dict(module, opt)
    else:
        if sharding.startswith("ddp"):
            opt.consolidate_state_dict(to=0)
        optim_state = opt.state_dict() if dist.get_rank() == 0 else None
    weights = full_state(module, model, sharding)
    if dist.get_rank() == 0:
        torch.save({"step": step, "weights": weights, "optim": optim_state}, path + ".tmp")
        os.replace(path + ".tmp", path)
    dist.barrier()


def load_optim(st, opt, sharding, module):
    if sharding == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        opt.load_state_dict(FSDP.shard_full_optim_state_dict(st["optim"], module))
    else:
        opt.load_state_dict(st["optim"])


def write_output(stage_dir, cfg, weights, tied):
    """The trained model as a Hugging Face folder: out.tmp/ then renamed to out/."""
    out, tmp = os.path.join(stage_dir, "out"), os.path.join(stage_dir, "out.tmp")
    os.makedirs(tmp, exist_ok=True)
    keep = {k: v for k, v in weights.items() if not (tied and k == "lm_head.weight") and not k.endswith("inv_freq")}
    save_safetensors(os.path.join(tmp, "model.safetensors"), keep)
    cfg = dict(cfg, torch_dtype="float32")
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if os.path.exists(out):
        import shutil

        shutil.rmtree(out)
    os.replace(tmp, out)


def step_loss(model, device, plan, mine, n_global, world):
    """This rank's share of the batch loss (scaled for the average over ranks) and its metrics."""
    stage = plan["stage"]
    if not mine:  # no episode here this step: take part in the collectives with a zero loss
        lp = token_logprobs(model, torch.zeros((1, 2), dtype=torch.long, device=device), (torch.tensor([0], device=device), torch.tensor([0], device=device)))
        return lp.sum() * 0, torch.zeros(3, dtype=torch.float64)
    if stage == "sft":
        sums = score(model, device, [(e["prompt"], e["chosen"]) for e in mine])
        loss = -sums.sum() / n_global  # n_global: chosen tokens over the whole batch
        return loss * world, torch.tensor([float(loss), 0.0, 0.0], dtype=torch.float64)
    seqs = [(e["prompt"], e["chosen"]) for e in mine] + [(e["prompt"], e["rejected"]) for e in mine]
    sums = score(model, device, seqs)
    k = len(mine)
    ref = torch.tensor([e["ref"] for e in mine], dtype=sums.dtype, device=device)
    lens = torch.tensor([[len(e["chosen"]), len(e["rejected"])] for e in mine], dtype=sums.dtype, device=device)
    losses, margins = pair_loss(plan["objective"], plan["beta"], plan.get("smoothing", 0.0), sums[:k], sums[k:], ref[:, 0], ref[:, 1], lens[:, 0], lens[:, 1])
    loss = losses.sum() / n_global  # n_global: pairs in the whole batch
    m = torch.tensor([float(loss), float(margins.sum()) / n_global, float((margins > 0).sum()) / n_global], dtype=torch.float64)
    return loss * world, m


def train(args):
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    with open(os.path.join(args.stage_dir, "plan.json")) as f:
        plan = json.load(f)
    torch.manual_seed(plan["seed"])
    cfg, weights = load_folder(os.path.join(args.stage_dir, "init"))
    state_path, metrics_path = os.path.join(args.stage_dir, "state.pt"), os.path.join(args.stage_dir, "metrics.jsonl")
    saved, start = None, 0
    if os.path.exists(state_path):
        saved = torch.load(state_path, map_location="cpu")
        weights, start = saved["weights"], saved["step"]
    model, layer_cls = build_model(cfg, os.path.join(args.stage_dir, "init"), weights, plan.get("recompute", False))
    if rank == 0:
        log(f"model: {type(model).__module__}.{type(model).__name__}")
    model.to(device).train()
    module, sharding = wrap(model, device, world, plan["weight_decay"], layer_cls)
    opt = make_optimizer(module if sharding == "fsdp" else model, plan, sharding)
    if saved is not None:
        load_optim(saved, opt, sharding, module)
        if rank == 0:
            log(f"resuming after step {start}")
    if rank == 0:
        log(f"{plan['stage']} stage: {plan['steps']} steps of {plan['batch']} episodes, {world} ranks, {sharding}, {device.type}, PyTorch {torch.__version__}")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and plan.get("bf16", True) else None
    t0, tokens = time.time(), 0
    mlog = None
    if rank == 0:
        kept = []
        if start and os.path.exists(metrics_path):  # lines past the checkpoint are trained again
            with open(metrics_path) as f:
                kept = [line for line in f if line.strip() and json.loads(line)["step"] <= start]
        mlog = open(metrics_path, "w")
        mlog.writelines(kept)
    for step, batch in episodes_by_step(args.stage_dir, plan, start):
        mine = batch[rank::world]
        check_episodes(mine, cfg["vocab_size"], cfg.get("max_position_embeddings", 1 << 30))
        n_global = sum(len(e["chosen"]) for e in batch) if plan["stage"] == "sft" else len(batch)
        tokens += sum(len(e["prompt"]) - 1 + len(e["chosen"]) + (len(e["rejected"]) if plan["stage"] == "pref" else 0) for e in batch)
        lr = plan["lr"][step]
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        if autocast is not None:
            with autocast:
                loss, m = step_loss(module, device, plan, mine, n_global, world)
        else:
            loss, m = step_loss(module, device, plan, mine, n_global, world)
        loss.backward()
        dist.all_reduce(m)
        norm = clip(module, model, sharding, plan["clip"])
        if not math.isfinite(norm) or not math.isfinite(float(m[0])):
            raise FloatingPointError(f"step {step + 1}: loss {float(m[0])}, gradient norm {norm}: training diverged (lower lr?)")
        opt.step()
        if mlog:
            rec = {"step": step + 1, "loss": float(m[0]), "lr": lr, "grad_norm": norm, "tokens": tokens, "elapsed_s": time.time() - t0}
            if plan["stage"] == "pref":
                rec["reward_margin"], rec["reward_accuracy"] = float(m[1]), float(m[2])
            mlog.write(json.dumps(rec) + "\n")
            mlog.flush()
            print(json.dumps({"progress": step + 1, "of": plan["steps"], "loss": rec["loss"]}), flush=True)
        if (step + 1) % plan["checkpoint_every"] == 0 or step + 1 == plan["steps"]:
            save_state(state_path, module, model, opt, sharding, step + 1)
    weights = full_state(module, model, sharding)
    if rank == 0:
        mlog.close()
        write_output(args.stage_dir, cfg, weights, model.tied)
        log(f"wrote {os.path.join(args.stage_dir, 'out')}")
    dist.barrier()
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description="fspo's PyTorch trainer (run by `fspo train --engine torch`)")
    ap.add_argument("--stage-dir", required=True, help="the folder fspo staged: plan.json, init/, episodes-*.jsonl")
    train(ap.parse_args())


if __name__ == "__main__":
    main()
