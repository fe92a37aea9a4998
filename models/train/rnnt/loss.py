"""RNN-T loss in pure PyTorch, and the in-place distillation loss of the supernet.

torchaudio's RNN-T loss does not load with torch 2.15, so the forward variable is computed
here in log space over the anti-diagonals n = t + u of the T x (U+1) lattice: every node on a
diagonal depends only on the previous diagonal, so one vectorised step per diagonal (T + U
steps) replaces T * U scalar steps, and autograd provides the backward pass.

  alpha[0, 0] = 0
  alpha[t, u] = logaddexp(alpha[t-1, u] + blank[t-1, u], alpha[t, u-1] + label[t, u-1])
  log P(y | x) = alpha[T-1, U] + blank[T-1, U]

Padded frames (t >= T_b) and padded labels (u > U_b) only feed nodes with larger t or u, so
they never reach the node an utterance reads its likelihood from; no masking is needed.
"""

import math

import torch

NEG = -1e30  # finite "log 0": logaddexp(-inf, -inf) would give NaN gradients


def rnnt_nll(logits, targets, frames, labels):
    """Negative log-likelihood per utterance.

    logits [B, T, U+1, V] (unnormalised), targets [B, U] int64 (padding: any valid id),
    frames [B] (T_b), labels [B] (U_b). Returns [B] float."""
    B, T, U1, _ = logits.shape
    logp = logits.float().log_softmax(-1)
    blank = logp[..., 0]  # [B, T, U+1]
    label = logp[:, :, :-1, :].gather(3, targets[:, None, :, None].expand(B, T, U1 - 1, 1)).squeeze(3)
    label = torch.cat([label, label.new_full((B, T, 1), NEG)], 2)  # no emission from u = U
    # Skew both to diagonal-major once ([B, T+U, U+1], entry [n, u] = node (n - u, u)), so the
    # loop below only slices: indexing inside the loop made the backward pass 4x slower.
    N = T + U1 - 1
    t = torch.arange(N, device=logits.device)[:, None] - torch.arange(U1, device=logits.device)[None, :]
    valid = (t >= 0) & (t < T)
    index = t.clamp(0, T - 1)[None].expand(B, N, U1)
    blank_d = torch.where(valid, blank.gather(1, index), NEG).unbind(1)
    label_d = torch.where(valid, label.gather(1, index), NEG).unbind(1)
    alpha = torch.full((B, U1), NEG, device=logits.device)
    alpha[:, 0] = 0.0
    diagonals = [alpha]
    column = alpha.new_full((B, 1), NEG)
    for n in range(1, N):
        # node (t, u) on diagonal n comes from (t-1, u) by blank and (t, u-1) by label u-1,
        # both on diagonal n-1 at positions u and u-1
        from_blank = alpha + blank_d[n - 1]
        from_label = torch.cat([column, (alpha + label_d[n - 1])[:, :-1]], 1)
        alpha = torch.logaddexp(from_blank, from_label)
        diagonals.append(alpha)
    alphas = torch.stack(diagonals, 1)  # [B, T+U, U+1]: alphas[b, t+u, u] = alpha[t, u]
    b = torch.arange(B, device=logits.device)
    last = alphas[b, frames - 1 + labels, labels] + blank[b, frames - 1, labels]
    return -last


def lattice_mask(frames, labels, T, U1):
    """[B, T, U+1] bool: the lattice nodes that belong to each utterance."""
    t = torch.arange(T, device=frames.device)[None, :, None] < frames[:, None, None]
    u = torch.arange(U1, device=frames.device)[None, None, :] <= labels[:, None, None]
    return t & u


def alpha_divergence(student_logits, teacher_logits, mask, alpha_neg=-1.0, alpha_pos=1.0, beta=5.0):
    """AlphaNet's adaptive alpha-divergence from the teacher p to the student q, per utterance.

    D_a(p || q) = 1 / (a (a - 1)) * sum_i q_i ((p_i / q_i)^a - 1), with a -> 1 the forward KL
    KL(p || q) (mass-covering) and a = -1 penalising student mass where the teacher has none
    (mode-seeking). AlphaNet takes the larger of the two so the student is pushed on whichever
    side it is currently worse; the powered ratio (p/q)^a is clipped at beta, as AlphaNet clips it, so
    that lattice nodes where the teacher is near-certain (blank ~ 0.999) cannot explode the
    a = -1 term. Averaged over each utterance's lattice nodes: [B]."""
    logq = student_logits.float().log_softmax(-1)
    logp = teacher_logits.float().log_softmax(-1).detach()
    p = logp.exp()
    forward_kl = (p * (logp - logq)).sum(-1) if alpha_pos == 1.0 else _alpha(logp, logq, alpha_pos, beta)
    other = _alpha(logp, logq, alpha_neg, beta)
    per_node = torch.stack([forward_kl, other], 0)
    m = mask.float()
    per_utt = (per_node * m).sum((2, 3)) / m.sum((1, 2)).clamp(min=1)
    return per_utt.max(0).values


def _alpha(logp, logq, a, beta):
    ratio = ((logp - logq) * a).clamp(max=math.log(beta)).exp()  # (p/q)^a <= beta
    q = logq.exp()
    return (q * (ratio - 1.0)).sum(-1) / (a * (a - 1.0))
