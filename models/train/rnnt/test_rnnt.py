"""Unit tests of the RNN-T recipe: cd models/train && python3 -m unittest rnnt.test_rnnt"""

import copy
import itertools
import math
import unittest

import numpy as np
import torch

from .data import warp_bins
from .decode import error_rates, greedy
from .loss import alpha_divergence, lattice_mask, rnnt_nll
from .model import RNNT, Dims, Slice, param_count, width_units

TINY = Dims(layers=3, hidden=12, pred_hidden=10, embed=6, joint=8)


def brute_force_nll(logits, target):
    """-log of the sum over every alignment: orderings of T blanks and U labels whose last
    symbol is a blank (the blank that leaves the last frame)."""
    logp = torch.log_softmax(logits.double(), -1)
    T, U = logits.shape[0], len(target)
    total = []
    for labels_at in itertools.combinations(range(T - 1 + U), U):
        t = u = 0
        lp = 0.0
        for step in range(T - 1 + U):
            if step in labels_at:
                lp += logp[t, u, target[u]]
                u += 1
            else:
                lp += logp[t, u, 0]
                t += 1
        total.append(lp + logp[T - 1, U, 0])
    return -torch.logsumexp(torch.stack(total), 0)


def random_model(seed=0, dims=TINY):
    torch.manual_seed(seed)
    m = RNNT(dims)
    m.mean.normal_()
    m.inv_std.uniform_(0.5, 2.0)
    return m.eval()


class LossTest(unittest.TestCase):
    def test_matches_brute_force_with_padding(self):
        torch.manual_seed(1)
        logits = torch.randn(2, 4, 4, 5) * 2
        targets = torch.tensor([[1, 4, 2], [3, 1, 0]])
        frames, labels = torch.tensor([4, 3]), torch.tensor([3, 2])
        nll = rnnt_nll(logits, targets, frames, labels)
        self.assertAlmostEqual(float(nll[0]), float(brute_force_nll(logits[0], [1, 4, 2])), places=4)
        self.assertAlmostEqual(float(nll[1]), float(brute_force_nll(logits[1, :3, :3], [3, 1])), places=4)

    def test_gradient_is_finite_and_matches_finite_difference(self):
        torch.manual_seed(2)
        logits = torch.randn(1, 3, 3, 4, requires_grad=True)
        targets, frames, labels = torch.tensor([[2, 3]]), torch.tensor([3]), torch.tensor([2])
        rnnt_nll(logits, targets, frames, labels).sum().backward()
        self.assertTrue(torch.isfinite(logits.grad).all())
        eps, pos = 1e-2, (0, 1, 1, 2)
        plus, minus = logits.detach().clone(), logits.detach().clone()
        plus[pos] += eps
        minus[pos] -= eps
        numeric = (brute_force_nll(plus[0], [2, 3]) - brute_force_nll(minus[0], [2, 3])) / (2 * eps)
        self.assertAlmostEqual(float(logits.grad[pos]), float(numeric), places=3)

    def test_alpha_divergence_zero_only_for_identical_distributions(self):
        torch.manual_seed(3)
        a = torch.randn(2, 5, 4, 29)
        mask = lattice_mask(torch.tensor([5, 3]), torch.tensor([3, 1]), 5, 4)
        self.assertLess(float(alpha_divergence(a, a, mask).abs().max()), 1e-6)
        d = alpha_divergence(a + torch.randn_like(a), a, mask)
        self.assertTrue(bool((d > 0.01).all()))


class SupernetTest(unittest.TestCase):
    def test_width_rounding(self):
        self.assertEqual([width_units(w, 192) for w in (0.5, 0.625, 0.75, 1.0)], [96, 120, 144, 192])
        self.assertEqual(width_units(0.5, 7), 4)  # half up, as the Rust slicer rounds

    def test_param_count_closed_form(self):
        for d in (TINY, TINY.sliced(Slice(1, 0.5)), Dims()):
            self.assertEqual(param_count(d), sum(p.numel() for p in RNNT(d).parameters()))

    def test_standalone_subnet_equals_slice_of_supernet(self):
        m = random_model()
        x, y = torch.randn(2, 7, 160), torch.randint(1, 29, (2, 4))
        for s in (Slice(3, 1.0), Slice(2, 0.5), Slice(1, 0.75)):
            sub = m.standalone(s)
            self.assertEqual(sub.dims, TINY.sliced(s))
            torch.testing.assert_close(sub(x, y, sub.full()), m(x, y, s), rtol=0, atol=1e-5)

    def test_chunked_streaming_equals_full_sequence(self):
        m = random_model()
        s = Slice(2, 0.75)
        x = torch.randn(1, 10, 160)
        k = width_units(0.75, TINY.hidden)
        states = [(torch.zeros(1, 1, k), torch.zeros(1, 1, k))] * 2
        chunks = []
        for c in range(0, 10, 4):
            out, states = m.encode(x[:, c:c + 4].reshape(-1, 1, 160), s, states=states, batch_first=False)
            chunks.append(out.reshape(1, -1, TINY.joint))
        torch.testing.assert_close(torch.cat(chunks, 1), m.encode(x, s), rtol=0, atol=1e-5)

    def test_batched_greedy_equals_one_by_one(self):
        m = random_model(4)
        with torch.no_grad():
            m.joint_out.bias[0] -= 3.0  # make it emit, so the per-frame symbol loop is exercised
        x = torch.randn(3, 9, 160)
        frames = torch.tensor([9, 5, 7])
        batched = greedy(m, x, frames, Slice(2, 1.0))
        self.assertTrue(any(batched))
        for b in range(3):
            self.assertEqual(batched[b], greedy(m, x[b:b + 1, :frames[b]], frames[b:b + 1], Slice(2, 1.0))[0])

    def test_error_rates(self):
        r = error_rates(["pothole left lane", "crack"], ["pothole lane", "crack"])
        self.assertAlmostEqual(r["wer"], 1 / 4)
        self.assertAlmostEqual(r["cer"], 5 / 22)
        self.assertAlmostEqual(r["sentence_acc"], 0.5)


def write_noise_set(folder, n, seed):
    """A speech folder of n short noise 'utterances' with random transcripts (no espeak)."""
    import wave
    from pathlib import Path

    rng = np.random.default_rng(seed)
    (Path(folder) / "wav").mkdir(parents=True)
    rows = []
    for i in range(n):
        with wave.open(str(Path(folder) / "wav" / f"{i:06d}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((rng.standard_normal(8000 + 800 * i) * 3000).astype("<i2").tobytes())
        rows.append(f"{i:06d}\ten-us\t" + " ".join(["left", "lane", "crack", "three"][j % 4] for j in range(i % 3 + 1)))
    (Path(folder) / "transcripts.tsv").write_text("\n".join(rows) + "\n")


class AugmentTest(unittest.TestCase):
    def test_vocal_tract_warp_moves_a_formant_by_the_factor(self):
        m = torch.zeros(3, 40)
        m[:, 18] = 1.0  # a formant at bin 18
        self.assertTrue(torch.equal(warp_bins(m, 1.0), m))
        for a, peak in [(0.9, 20), (1.125, 16), (0.85, 21)]:  # 18 / a, rounded
            w = warp_bins(m, a)
            self.assertEqual(w.shape, m.shape)
            self.assertEqual(int(w[0].argmax()), peak, a)
        self.assertTrue(torch.equal(warp_bins(torch.arange(40.0)[None], 2.0)[0, 20:],
                                    torch.full((20,), 39.0)))  # past the top: the top bin


class ResumeTest(unittest.TestCase):
    def test_interrupted_and_resumed_run_equals_uninterrupted_run(self):
        import contextlib
        import io
        import tempfile

        from .__main__ import parser
        from .train import train

        with tempfile.TemporaryDirectory() as d:
            write_noise_set(f"{d}/data/train", 12, 0)
            write_noise_set(f"{d}/data/val", 3, 1)
            base = ["train", "--data", f"{d}/data", "--epochs", "2", "--batch", "4", "--save-every", "2",
                    "--layers", "2", "--hidden", "16", "--pred-hidden", "12", "--embed", "8", "--joint", "8"]
            with contextlib.redirect_stdout(io.StringIO()) as log:
                train(parser().parse_args(base + ["--out", f"{d}/a"]))
                train(parser().parse_args(base + ["--out", f"{d}/b", "--hours", "1e-9"]))
                train(parser().parse_args(base + ["--out", f"{d}/b"]))
            self.assertIn("stopping in epoch 1 at batch 1", log.getvalue())
            self.assertIn("resumed from", log.getvalue())
            a = torch.load(f"{d}/a/last.pt", weights_only=False)
            b = torch.load(f"{d}/b/last.pt", weights_only=False)
            self.assertEqual(a["state"]["step"], 6)
            for k in a["model"]:
                torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=0, msg=k)
            for ha, hb in zip(a["state"]["history"], b["state"]["history"], strict=True):
                self.assertEqual((ha["loss"], ha["val"]), (hb["loss"], hb["val"]))


    def test_anneal_time_box_is_kept_across_a_resume(self):
        import contextlib
        import io
        import tempfile

        from .__main__ import parser
        from .train import train

        with tempfile.TemporaryDirectory() as d:
            write_noise_set(f"{d}/data/train", 12, 0)
            write_noise_set(f"{d}/data/val", 3, 1)
            base = ["train", "--data", f"{d}/data", "--epochs", "2", "--batch", "4", "--save-every", "2",
                    "--layers", "2", "--hidden", "16", "--pred-hidden", "12", "--embed", "8", "--joint", "8",
                    "--out", f"{d}/run", "--anneal-in-time"]
            last = lambda: torch.load(f"{d}/run/last.pt", weights_only=False)["state"]  # noqa: E731
            with contextlib.redirect_stdout(io.StringIO()) as log:
                train(parser().parse_args(base + ["--hours", "1e-9"]))
                first = last()
                train(parser().parse_args(base + ["--hours", "1e-9"]))  # the same box: spent
                again = last()
                train(parser().parse_args(base + ["--hours", "1"]))  # a new box
            self.assertEqual(first["step"], 1)
            self.assertGreaterEqual(first["time_box"]["seconds_used"], 1e-9 * 3600)
            self.assertIn("time box", log.getvalue())
            self.assertEqual(again["step"], 1)
            self.assertEqual(last()["step"], 6)
            self.assertEqual(last()["time_box"]["hours"], 1.0)


class ExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from .export import build_graphs

        cls.model = random_model(5)
        cls.full = build_graphs(cls.model, 4, TINY)

    def test_sliced_export_equals_rules_applied_to_full_export(self):
        from onnx import numpy_helper

        from .export import build_graphs
        from .slicer import slice_folder

        for s in (Slice(2, 0.5), Slice(3, 0.75), Slice(1, 1.0)):
            direct = build_graphs(self.model.standalone(s), 4, TINY)
            cut = slice_folder(self.full, s.depth, s.width)
            for name in direct:
                a, b = direct[name].graph, cut[name].graph
                where = f"{name} {s}"
                self.assertEqual([(n.name, n.op_type, list(n.input), list(n.output)) for n in a.node],
                                 [(n.name, n.op_type, list(n.input), list(n.output)) for n in b.node], where)
                self.assertEqual([str(n.attribute) for n in a.node], [str(n.attribute) for n in b.node], where)
                self.assertEqual(str(a.input) + str(a.output), str(b.input) + str(b.output), where)
                self.assertEqual([t.name for t in a.initializer], [t.name for t in b.initializer], where)
                for ta, tb in zip(a.initializer, b.initializer):
                    np.testing.assert_array_equal(numpy_helper.to_array(ta), numpy_helper.to_array(tb), where)
                self.assertEqual(list(direct[name].metadata_props), list(cut[name].metadata_props), where)

    def test_onnx_streaming_decode_equals_pytorch(self):
        import tempfile

        from .export import write_folder
        from .onnx_check import OnnxRecogniser
        from .slicer import slice_folder

        from .export import build_graphs

        model = copy.deepcopy(self.model)
        with torch.no_grad():
            model.joint_out.bias[0] -= 3.0  # make it emit
        graphs = build_graphs(model, 4, TINY)
        x = torch.randn(1, 11, 160)
        for s in (Slice(3, 1.0), Slice(2, 0.5)):
            with tempfile.TemporaryDirectory() as d:
                write_folder(slice_folder(graphs, s.depth, s.width), d)
                ids, enc = OnnxRecogniser(d).transcribe(x[0].numpy())
            ref = greedy(model, x, torch.tensor([11]), s)[0]
            self.assertTrue(ref)
            self.assertEqual(ids, ref, str(s))
            with torch.no_grad():
                np.testing.assert_allclose(enc, model.encode(x, s)[0].numpy(), atol=1e-5)

    def test_import_reads_back_every_weight_of_an_export(self):
        import tempfile

        from .export import build_graphs
        from .export import write_folder
        from .import_onnx import import_folder

        model = copy.deepcopy(self.model)
        with torch.no_grad():  # distinct normalisation, so a swapped or dropped buffer shows
            model.mean.uniform_(-1, 1)
            model.inv_std.uniform_(0.5, 2)
        for s in (model.full(), Slice(2, 0.5)):
            sub = model.standalone(s)
            with tempfile.TemporaryDirectory() as d:
                write_folder(build_graphs(sub, 4, TINY), d)
                back, state = import_folder(d)
            self.assertEqual(back.dims, sub.dims)
            self.assertEqual(state["config"]["dims"]["layers"], s.depth)
            ref = sub.state_dict()
            self.assertEqual(set(back.state_dict()), set(ref))
            for k, v in back.state_dict().items():
                torch.testing.assert_close(v, ref[k], rtol=0, atol=0, msg=k)

    def test_op_set_and_metadata(self):
        import json

        for name, proto in self.full.items():
            meta = {p.key: p.value for p in proto.metadata_props}
            self.assertEqual(meta["edgetrim.asr.component"], name)
            self.assertEqual(meta["edgetrim.asr.n_mels"], "40")
            rules = json.loads(meta["edgetrim.slice"])
            self.assertEqual(rules["version"], 1)
        enc_rules = json.loads({p.key: p.value for p in self.full["encoder"].metadata_props}["edgetrim.slice"])
        self.assertEqual(len(enc_rules["depth"]["layers"]), TINY.layers)
        self.assertEqual(math.prod(d.dim_value for d in self.full["encoder"].graph.input[0].type.tensor_type.shape.dim),
                         4 * 160)


if __name__ == "__main__":
    unittest.main()
