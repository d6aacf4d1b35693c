"""GRPO loss against hand-derived values."""

from __future__ import annotations

import math

import pytest
import torch

from videor1.algorithms.losses import aggregate, k3_kl, policy_loss, token_entropy, token_logprobs

# two rollouts, lengths 2 and 1 (mask), advantages +1 and -1
MASK = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
ADV = torch.tensor([1.0, -1.0])


def _logp():
    return torch.log(torch.tensor([[0.5, 0.25], [0.5, 0.9]])).requires_grad_(True)


def test_single_update_matches_reference_gradient():
    # old = logp.detach(): ratio = 1, surrogate = A, loss_it = -A_i.
    # seq-mean: mean(-1 over seq 0, +1 over seq 1) = 0
    # d loss / d logp_it = -A_i / len_i / N -> seq0: -1/2/2 = -0.25 each; seq1: +1/1/2 = 0.5; pad: 0
    logp = _logp()
    loss, stats = policy_loss(logp, logp.detach(), ADV, MASK, beta=0.0)
    assert loss.item() == pytest.approx(0.0)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.25, -0.25], [0.5, 0.0]]))
    assert stats["clip_fraction"].item() == 0.0
    assert stats["ratio_mean"].item() == pytest.approx(1.0)


def test_aggregations():
    per_token = torch.tensor([[-1.0, -1.0], [1.0, 7.0]])  # 7 sits on padding and must not count
    # seq-mean: mean(-1, 1) = 0; token-mean: (-1 - 1 + 1) / 3 = -1/3; dr-grpo with max_len 4:
    # (-1 - 1 + 1) / (2 * 4) = -0.125
    assert aggregate(per_token, MASK, "seq-mean").item() == pytest.approx(0.0)
    assert aggregate(per_token, MASK, "token-mean").item() == pytest.approx(-1 / 3)
    assert aggregate(per_token, MASK, "dr-grpo", max_len=4).item() == pytest.approx(-0.125)
    # without max_len dr-grpo divides by the padded width L = 2: -1 / 4
    assert aggregate(per_token, MASK, "dr-grpo").item() == pytest.approx(-0.25)
    with pytest.raises(ValueError, match="unknown loss aggregation"):
        aggregate(per_token, MASK, "sum")  # type: ignore[arg-type]


def test_ratio_clipping():
    # one token each. seq 0: ratio 1.5, A = +1 -> min(1.5, 1.2) = 1.2 -> loss -1.2 (clipped)
    # seq 1: ratio 0.5, A = -1 -> min(-0.5, -0.8) = -0.8 -> loss +0.8 (clipped)
    # seq-mean = (-1.2 + 0.8) / 2 = -0.2; clip fraction 2/2 = 1; gradient 0 (clipped branch is constant)
    old = torch.zeros(2, 1)
    logp = torch.log(torch.tensor([[1.5], [0.5]])).requires_grad_(True)
    mask = torch.ones(2, 1)
    loss, stats = policy_loss(logp, old, ADV, mask, beta=0.0, clip_eps_low=0.2, clip_eps_high=0.2)
    assert loss.item() == pytest.approx(-0.2)
    assert stats["clip_fraction"].item() == pytest.approx(1.0)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.zeros(2, 1))


def test_ratio_inside_clip_range_keeps_gradient():
    # ratio 1.1, A = +1, eps 0.2 -> surrogate 1.1, loss -1.1; d/dlogp = -ratio * A = -1.1
    old = torch.zeros(1, 1)
    logp = torch.log(torch.tensor([[1.1]])).requires_grad_(True)
    loss, stats = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 1), beta=0.0)
    assert loss.item() == pytest.approx(-1.1)
    loss.backward()
    assert logp.grad.item() == pytest.approx(-1.1)
    assert stats["clip_fraction"].item() == 0.0


def test_asymmetric_clip_high():
    # clip-higher (DAPO): eps_high 0.28 lets ratio 1.25 pass unclipped for A > 0
    old = torch.zeros(1, 1)
    logp = torch.log(torch.tensor([[1.25]]))
    loss, _ = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 1), beta=0.0, clip_eps_high=0.28)
    assert loss.item() == pytest.approx(-1.25)


def test_k3_kl_values_and_clamp():
    # d = ref - logp = ln 2 -> kl = 2 - ln 2 - 1 = 0.306853
    # d = 20 is clamped to 10 -> kl = e^10 - 10 - 1 = 22015.465795
    # d = 0 -> 0
    logp = torch.tensor([[0.0, 0.0, -1.0]])
    ref = torch.tensor([[math.log(2), 20.0, -1.0]])
    kl = k3_kl(logp, ref)
    torch.testing.assert_close(kl, torch.tensor([[2 - math.log(2) - 1, math.exp(10) - 11, 0.0]]))


def test_kl_term_enters_loss_with_beta():
    # A = 0 so only the KL remains: kl = 0.306853 on the single token; loss = 0.04 * 0.306853
    logp = torch.zeros(1, 1)
    ref = torch.full((1, 1), math.log(2))
    loss, stats = policy_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), ref_logp=ref, beta=0.04)
    assert loss.item() == pytest.approx(0.04 * (1 - math.log(2)))
    assert stats["kl"].item() == pytest.approx(1 - math.log(2))
    with pytest.raises(ValueError, match="needs ref_logp"):
        policy_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), beta=0.04)


def test_token_logprobs_and_entropy():
    # logits [0, ln 3] -> p = [1/4, 3/4]; token 1 -> ln(3/4); entropy = -(1/4 ln 1/4 + 3/4 ln 3/4) = 0.562335
    logits = torch.tensor([[[0.0, math.log(3)]]])
    lp = token_logprobs(logits, torch.tensor([[1]]))
    assert lp.item() == pytest.approx(math.log(0.75))
    assert token_entropy(logits).item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    # temperature 2 -> logits [0, ln3 / 2] -> p1 = sqrt3 / (1 + sqrt3) = 0.633975
    lp_t = token_logprobs(logits, torch.tensor([[1]]), temperature=2.0)
    assert lp_t.item() == pytest.approx(math.log(math.sqrt(3) / (1 + math.sqrt(3))))


def test_token_mean_over_micro_batches_of_unequal_length_weighs_every_token_equally():
    # one rollout of 100 completion tokens in micro-batch A, one of 10 in micro-batch B; advantage 1
    # each, old = logp.detach(), so loss_t = -1 on every token and d loss / d logp_t = -weight_t.
    # The step's token mean weighs each of the 110 tokens 1/110: the parts are -100/110 and -10/110,
    # the gradient -1/110 everywhere. A mean per micro-batch (weighted 1/2 each) would give
    # -0.5/100 and -0.5/10.
    lengths = (100, 10)
    logps = [torch.full((1, n), -1.0, requires_grad=True) for n in lengths]
    parts = []
    for logp in logps:
        loss, _ = policy_loss(
            logp,
            logp.detach(),
            torch.ones(1),
            torch.ones_like(logp),
            beta=0.0,
            agg="token-mean",
            num_tokens=110,
        )
        loss.backward()
        parts.append(loss.item())
    assert parts == pytest.approx([-100 / 110, -10 / 110])
    assert sum(parts) == pytest.approx(-1.0)
    for logp in logps:
        torch.testing.assert_close(logp.grad, torch.full_like(logp, -1 / 110))
    # seq-mean over the step's 2 sequences: each sequence weighs 1/2, spread over its own tokens
    logp = torch.full((1, 10), -1.0, requires_grad=True)
    loss, _ = policy_loss(
        logp, logp.detach(), torch.ones(1), torch.ones_like(logp), beta=0.0, num_sequences=2
    )
    loss.backward()
    assert loss.item() == pytest.approx(-0.5)
    torch.testing.assert_close(logp.grad, torch.full_like(logp, -0.5 / 10))


def test_step_totals_default_to_the_call_and_kl_sums_are_exact():
    per_token = torch.tensor([[-1.0, -1.0], [1.0, 7.0]])
    # 2 sequences of 3 tokens in the step, this call holds all of them: the defaults agree
    assert aggregate(per_token, MASK, "token-mean", num_tokens=3).item() == pytest.approx(-1 / 3)
    assert aggregate(per_token, MASK, "seq-mean", num_sequences=2).item() == pytest.approx(0.0)
    # half of a step of 4 sequences: dr-grpo divides by 4 * max_len
    assert aggregate(per_token, MASK, "dr-grpo", max_len=4, num_sequences=4).item() == pytest.approx(-1 / 16)
    logp = torch.log(torch.tensor([[0.5, 0.25], [0.5, 0.9]]))
    ref = torch.log(torch.tensor([[0.25, 0.25], [0.5, 0.5]]))
    _, stats = policy_loss(logp, logp, ADV, MASK, ref_logp=ref, beta=0.04)
    # k3 on the three completion tokens: d = ln(0.5), 0, 0 -> exp(d) - d - 1 = 0.5 + ln 2 - 1
    assert stats["kl_sum"].item() == pytest.approx(0.5 + math.log(2) - 1)


def test_kl_gradient_pulls_the_policy_toward_the_reference():
    # zero advantage: loss_t = beta * k3_t, d k3 / d logp = 1 - exp(ref - logp); seq-mean over 2 tokens
    # token 0: p = 0.5, ref = 0.25 -> 1 - 0.5 = 0.5;  token 1: p = 0.25, ref = 0.5 -> 1 - 2 = -1
    # gradient = beta * (0.5, -1) / 2 = (0.01, -0.02): lowers logp where the policy exceeds the reference
    logp = torch.log(torch.tensor([[0.5, 0.25]])).requires_grad_(True)
    ref = torch.log(torch.tensor([[0.25, 0.5]]))
    loss, _ = policy_loss(logp, logp.detach(), torch.zeros(1), torch.ones(1, 2), ref_logp=ref, beta=0.04)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[0.01, -0.02]]))


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk", [1, 5, 7, 1000])
def test_chunked_head_equals_the_full_logits(chunk, temperature):
    # float64 throughout: the chunked head and the unchunked one (full logits, then token_logprobs /
    # token_entropy) must agree to 1e-6 in log-probs, entropy, the GRPO loss and both gradients
    from videor1.algorithms.losses import head_token_logprobs

    g = torch.Generator().manual_seed(0)
    n, length, width, vocab = 3, 7, 16, 50
    hidden = torch.randn(n, length, width, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(vocab, width, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, vocab, (n, length), generator=g)
    mask = (torch.arange(length)[None] < torch.tensor([[7], [4], [1]])).long()  # [N, L]
    advantages = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    ref = torch.randn(n, length, generator=g, dtype=torch.float64) - 3

    def loss_of(logp):
        return policy_loss(logp, logp.detach(), advantages, mask, ref_logp=ref, agg="token-mean")[0]

    logits = hidden @ weight.T  # [N, L, V] the unchunked reference
    full_logp = _token_logprobs64(logits, targets, temperature)
    full_entropy = _token_entropy64(logits.detach(), temperature)
    full_loss = loss_of(full_logp)
    full_grads = torch.autograd.grad(full_loss, (hidden, weight))

    logp, entropy = head_token_logprobs(hidden, weight, targets, temperature=temperature, chunk=chunk)
    loss = loss_of(logp)
    grads = torch.autograd.grad(loss, (hidden, weight))
    assert logp.dtype == torch.float64 and logp.shape == (n, length) and not entropy.requires_grad
    torch.testing.assert_close(logp, full_logp, atol=1e-6, rtol=0)
    torch.testing.assert_close(entropy, full_entropy, atol=1e-6, rtol=0)
    assert abs(loss.item() - full_loss.item()) < 1e-6
    for got, want in zip(grads, full_grads):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def _token_logprobs64(logits, targets, temperature):  # token_logprobs without its cast to fp32
    z = logits / temperature
    return z.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(z, dim=-1)


def _token_entropy64(logits, temperature):
    logp = torch.log_softmax(logits / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def test_chunked_head_in_fp32_matches_token_logprobs():
    # the functions the rollout engines use (fp32 maths) agree with the chunked head in fp32
    from videor1.algorithms.losses import head_token_logprobs

    g = torch.Generator().manual_seed(1)
    hidden, weight = torch.randn(2, 5, 8, generator=g), torch.randn(30, 8, generator=g)
    targets = torch.randint(0, 30, (2, 5), generator=g)
    logp, entropy = head_token_logprobs(hidden, weight, targets, temperature=0.7, chunk=3)
    logits = hidden @ weight.T
    torch.testing.assert_close(logp, token_logprobs(logits, targets, temperature=0.7), atol=1e-5, rtol=0)
    torch.testing.assert_close(entropy, token_entropy(logits, temperature=0.7), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="share"):
        head_token_logprobs(hidden, weight, targets[:, :4])
