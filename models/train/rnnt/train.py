"""Training loop: the TODM supernet (sandwich sampling + in-place distillation + adaptive
dropout) or, with `--slice`, one subnet size trained on its own as the baseline.

Supernet step (TODM / BigNAS "sandwich rule"): the largest subnet is trained on the RNN-T loss;
the smallest and one random subnet are trained on the RNN-T loss plus the alpha-divergence from
the largest subnet's output distribution over the whole T x (U+1) lattice (detached: in-place
distillation, the teacher is the supernet of this very step). Gradients of the three are
accumulated and applied once. Dropout scales with the subnet's parameter count (adaptive
dropout: the largest subnet gets `--dropout`, a subnet of 1/5 the size 1/5 of it), since small
subnets underfit rather than overfit. `--small-weight` scales the smallest subnet's loss (NLL and
distillation), for a stage that pulls the smallest slice toward its individually trained
counterpart.

Resumes from RUN/last.pt, which is also written every `--save-every` steps inside an epoch
(with the batch position and the random streams, so a resumed run follows the same batches);
`--hours` stops at the first checkpoint after that much time, validating the weights (and updating
best.pt) at the stop; with `--anneal-in-time` the cosine learning-rate decay runs over whichever
ends first, the epochs or the hours, so a fixed-time run on a lent accelerator (`--device cuda`,
scripts/train-rnnt-gpu.sh) ends annealed, and the hours are then one box for the run folder:
resuming continues the box and its decay (the time used is in the checkpoint). On CUDA, dropout
draws from the GPU's random stream, which the mid-epoch checkpoint does not hold: a resumed GPU
run follows the same batches but not bit for bit the same dropout masks.
RUN/history.json has the losses and validation WER/CER per epoch; RUN/best.pt holds the EMA
weights with the best validation WER of the full model.
"""

import json
import math
import random
import time
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import torch
from trainkit import EMA, save_atomic

from .data import SpeechSet
from .decode import evaluate
from .loss import alpha_divergence, lattice_mask, rnnt_nll
from .model import RNNT, Dims, Slice, param_count


@lru_cache(maxsize=None)
def _params(dims):
    return param_count(dims)


def adaptive_dropout(full_dims, s, p_max):
    return p_max * _params(full_dims.sliced(s)) / _params(full_dims)


def eval_slices(config):
    """The subnets validated every epoch: full and smallest (plus a middle one for a supernet)."""
    if not config["supernet"]:
        return [Slice(Slice.parse(config["slice"]).depth, 1.0)]
    d = Dims(**config["dims"])
    widths = config["widths"]
    return [Slice(d.layers, 1.0), Slice((d.layers + config["min_depth"] + 1) // 2, widths[len(widths) // 2]),
            Slice(config["min_depth"], widths[0])]


def sample_slices(config, rng):
    """Sandwich: largest, smallest, and `--random` random subnets."""
    d = Dims(**config["dims"])
    widths, lo = config["widths"], config["min_depth"]
    picks = [Slice(d.layers, 1.0), Slice(lo, widths[0])]
    picks += [Slice(rng.randint(lo, d.layers), rng.choice(widths)) for _ in range(config["random"])]
    return picks


def lattice_loss(model, x, frames, targets, labels, s, dropout, teacher=None, kd_weight=1.0):
    """Per-character RNN-T NLL (+ distillation from `teacher` logits): (loss, nll, kd, logits)."""
    logits = model(x, targets, s, dropout)
    per_char = rnnt_nll(logits, targets, frames, labels) / labels.clamp(min=1)
    nll = per_char.mean()
    if teacher is None:
        return nll, nll.detach(), 0.0, logits
    mask = lattice_mask(frames, labels, logits.shape[1], logits.shape[2])
    # per-node divergence scaled to a per-character figure like the NLL: x (T + U) / U path nodes
    kd = (alpha_divergence(logits, teacher, mask) * (frames + labels) / labels.clamp(min=1)).mean()
    return nll + kd_weight * kd, nll.detach(), float(kd.detach()), logits


def train(args):
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # the loss's log-space recursion hits denormals: 5x slower without
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    t0 = time.time()
    device = torch.device(args.device)
    train_set = SpeechSet(Path(args.data) / "train")
    val_set = SpeechSet(Path(args.data) / "val")
    print(f"loaded {len(train_set)} train / {len(val_set)} val utterances in {time.time() - t0:.0f} s", flush=True)

    full = Dims(args.layers, args.hidden, args.pred_hidden, args.embed, args.joint)
    config = {"dims": asdict(full), "supernet": args.slice is None, "widths": sorted(args.widths),
              "min_depth": args.min_depth, "random": args.random, "dropout": args.dropout,
              "kd_weight": args.kd_weight, "small_weight": args.small_weight, "slice": args.slice,
              "warp": args.warp}
    own = Slice.parse(args.slice) if args.slice else None
    model = RNNT(full.sliced(own) if own else full)
    model.mean, model.inv_std = train_set.stats()
    if args.init and not last.exists():  # warm start: weights only, fresh optimizer and schedule
        model.load_state_dict(torch.load(args.init, weights_only=False, map_location="cpu")["ema"])
        print(f"initialised from {args.init}", flush=True)
    fill = model.mean.view(-1, train_set.logmel.shape[1])[0].clone()
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    ema = EMA(model, decay=0.999, tau=500)
    state = {"epoch": 0, "step": 0, "best_wer": 2.0, "history": [], "train_seconds": 0.0, "config": config}
    if last.exists():
        ck = torch.load(last, weights_only=False, map_location=device)
        ck["state"]["config"].setdefault("small_weight", 1.0)  # runs from before --small-weight
        if ck["state"]["config"] != config:
            raise SystemExit(f"{last} was trained with {ck['state']['config']}, not {config}: use another --out")
        model.load_state_dict(ck["model"])
        ema.model.load_state_dict(ck["ema"])
        ema.updates = ck["ema_updates"]
        opt.load_state_dict(ck["optimizer"])
        state = ck["state"]
        print(f"resumed from {last} at epoch {state['epoch']}", flush=True)
    print(f"model {_params(model.dims) / 1e6:.2f} M params, config {json.dumps(config)}", flush=True)

    steps_per_epoch = math.ceil(len(train_set) / args.batch)
    total = steps_per_epoch * args.epochs
    # `--hours` is a box per invocation, except with `--anneal-in-time`: the decay runs over one
    # box, so a resumed run (a killed session) continues that box where it stopped instead of
    # restarting it, and the learning rate does not jump back up. A finished box trains no more
    # (another `--hours` starts a new box).
    used = 0.0
    if args.hours and args.anneal_in_time:
        box = state.get("time_box", {})
        used = box.get("seconds_used", 0.0) if box.get("hours") == args.hours else 0.0
        state["time_box"] = {"hours": args.hours, "seconds_used": used}
        if used >= args.hours * 3600:
            print(f"the --hours {args.hours} time box of {out} is used up: nothing to train "
                  "(pass another --hours for a new box)", flush=True)
            return
    budget_start = time.time() - used
    deadline = budget_start + args.hours * 3600 if args.hours else None
    while state["epoch"] < args.epochs:
        model.train()
        start = time.time()
        gen = torch.Generator().manual_seed(args.seed * 1000 + state["epoch"])  # batches, augmentation
        rng = random.Random(args.seed * 1000 + state["epoch"])  # subnet sampling
        torch.manual_seed(args.seed * 1000 + state["epoch"])  # dropout
        batches = train_set.batches(args.batch, gen)
        sums, count, utts, first = {}, 0, 0, 0
        if "partial" in state:  # resume inside an epoch: same batch order, same random streams
            part = state.pop("partial")
            first, sums, count = part["batch"], part["sums"], part["batch"]
            gen.set_state(part["gen"])
            rng.setstate(part["rng"])
            torch.set_rng_state(part["torch"])
            start -= part["seconds"]
        resumed_at = time.time()
        for i in range(first, len(batches)):
            idx = batches[i]
            step = state["step"]
            progress = step / total
            if deadline is not None and args.anneal_in_time:  # the decay also ends with the time box
                progress = max(progress, (time.time() - budget_start) / (deadline - budget_start))
            progress = min(progress, 1.0)
            lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
            for g in opt.param_groups:
                g["lr"] = lr
            x, frames, targets, labels = (t.to(device) for t in train_set.collate(idx, augment=fill, generator=gen, warp=args.warp))
            opt.zero_grad(set_to_none=True)
            teacher = None
            for j, s in enumerate(sample_slices(config, rng) if own is None else [model.full()]):
                p = adaptive_dropout(full, own or s, args.dropout)
                loss, nll, kd, logits = lattice_loss(model, x, frames, targets, labels, s, p, teacher, args.kd_weight)
                (loss * (args.small_weight if j == 1 else 1.0)).backward()
                if j == 0:
                    teacher = logits.detach()
                name = "full" if j == 0 else "small" if j == 1 else "random"
                sums[f"nll_{name}"] = sums.get(f"nll_{name}", 0.0) + float(nll)
                if j:
                    sums[f"kd_{name}"] = sums.get(f"kd_{name}", 0.0) + kd
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            ema.update(model)
            state["step"] += 1
            count += 1
            utts += len(idx)
            if (i + 1) % 50 == 0:
                parts = " ".join(f"{k} {v / count:.3f}" for k, v in sums.items())
                print(f"epoch {state['epoch'] + 1}/{args.epochs} step {i + 1}/{steps_per_epoch} {parts} "
                      f"lr {lr:.2e} {utts / (time.time() - resumed_at):.1f} utt/s", flush=True)
            out_of_time = deadline is not None and time.time() > deadline
            if ((i + 1) % args.save_every == 0 or out_of_time) and i + 1 < len(batches):
                note_time_used(state, budget_start)
                state["partial"] = {"batch": i + 1, "sums": sums, "gen": gen.get_state(), "rng": rng.getstate(),
                                    "torch": torch.get_rng_state(), "seconds": time.time() - start}
                save_atomic({"model": model.state_dict(), "ema": ema.model.state_dict(), "ema_updates": ema.updates,
                             "optimizer": opt.state_dict(), "state": state}, last)
                del state["partial"]
                if out_of_time:
                    validate_at_stop(ema.model, val_set, config, state, out)
                    print(f"stopping in epoch {state['epoch'] + 1} at batch {i + 1}: --hours {args.hours} reached; "
                          "rerun the same command to resume", flush=True)
                    return
        state["epoch"] += 1
        seconds = time.time() - start
        state["train_seconds"] += seconds
        stopping = state["epoch"] >= args.epochs or (deadline is not None and time.time() > deadline)
        val = {}
        if state["epoch"] % args.eval_every == 0 or stopping:
            for s in eval_slices(config):
                rates, _ = evaluate(ema.model, val_set, s)
                val[str(s)] = rates
        state["history"].append({"epoch": state["epoch"], "loss": {k: v / count for k, v in sums.items()},
                                 "val": val, "train_seconds": seconds, "seconds": time.time() - start})
        print(f"epoch {state['epoch']}: " + "; ".join(f"{k} WER {v['wer']:.4f} CER {v['cer']:.4f}" for k, v in val.items())
              + f" ({seconds:.0f} s train, {time.time() - start:.0f} s total)", flush=True)
        note_time_used(state, budget_start)
        ck = {"model": model.state_dict(), "ema": ema.model.state_dict(), "ema_updates": ema.updates,
              "optimizer": opt.state_dict(), "state": state}
        if val and val[str(eval_slices(config)[0])]["wer"] <= state["best_wer"]:
            state["best_wer"] = val[str(eval_slices(config)[0])]["wer"]
            save_atomic({"ema": ema.model.state_dict(), "state": state}, out / "best.pt")
        save_atomic(ck, last)
        (out / "history.json").write_text(json.dumps(state, indent=1))
        if deadline and time.time() > deadline:
            print(f"stopping after epoch {state['epoch']}: --hours {args.hours} reached; "
                  "rerun the same command to resume", flush=True)
            return
    print(f"done: best val WER {state['best_wer']:.4f}, {state['train_seconds'] / 60:.0f} min of training", flush=True)


def note_time_used(state, budget_start):
    """Records how much of an `--anneal-in-time` box is spent, for the checkpoint being saved."""
    if "time_box" in state:
        state["time_box"]["seconds_used"] = time.time() - budget_start


def validate_at_stop(model, val_set, config, state, out):
    """Validation of the full model when `--hours` stops a run inside an epoch (best.pt kept if
    it is the best so far), so a time-boxed run always leaves its final weights judged."""
    s = eval_slices(config)[0]
    rates, _ = evaluate(model, val_set, s)
    print(f"at the stop: {s} WER {rates['wer']:.4f} CER {rates['cer']:.4f}", flush=True)
    state.setdefault("stops", []).append({"epoch": state["epoch"], "step": state["step"], "val": {str(s): rates}})
    if rates["wer"] <= state["best_wer"]:
        state["best_wer"] = rates["wer"]
        save_atomic({"ema": model.state_dict(), "state": state}, out / "best.pt")
    (out / "history.json").write_text(json.dumps(state, indent=1))


def load(path):
    """A checkpoint (best.pt or last.pt) -> (EMA model, its slice config); a baseline's model is
    the dense subnet it was trained as."""
    ck = torch.load(path, weights_only=False, map_location="cpu")
    config = ck["state"]["config"]
    full = Dims(**config["dims"])
    dims = full.sliced(Slice.parse(config["slice"])) if config["slice"] else full
    model = RNNT(dims)
    model.load_state_dict(ck["ema"])
    return model.eval(), ck["state"]
