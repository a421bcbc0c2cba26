"""EMAttention against a loop reference written from Li et al.'s EM steps (float64), and its momentum update."""
import pytest
import torch

from segattn.models.attention.em_attention import EMAttention

B, C, H, W, K = 2, 8, 4, 5, 6


def em_reference(bases, x, num_stages):
    """Per image: E-step ``z_nk = exp(x_n . mu_k) / sum_k'``, M-step ``mu_k = sum_n z_nk x_n / sum_n z_nk``,
    ``mu_k /= |mu_k|``; ``x~_n = sum_k z_nk mu_k``. Returns (reconstruction ``B x C x H x W``, final bases)."""
    out, final = torch.empty_like(x), []
    for b in range(x.shape[0]):
        xs = [x[b, :, i, j] for i in range(x.shape[2]) for j in range(x.shape[3])]
        mu = [bases[0, :, k].clone() for k in range(bases.shape[2])]
        for _ in range(num_stages):
            z = []
            for v in xs:
                e = torch.exp(torch.stack([torch.dot(v, m_k) for m_k in mu]))
                z.append(e / e.sum())
            mu = []
            for k in range(bases.shape[2]):
                m_k = sum(z_n[k] * v for z_n, v in zip(z, xs)) / sum(z_n[k] for z_n in z)
                mu.append(m_k / torch.sqrt((m_k ** 2).sum()))
        for n, z_n in enumerate(z):
            out[b, :, n // x.shape[3], n % x.shape[3]] = sum(z_n[k] * mu[k] for k in range(len(mu)))
        final.append(torch.stack(mu, 1))
    return out, torch.stack(final)


@pytest.mark.parametrize("num_stages", [1, 3])
def test_reconstruction_matches_reference(num_stages):
    torch.manual_seed(0)
    m = EMAttention(C, num_bases=K, num_stages=num_stages).double().eval()
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    before = m.bases.clone()
    expected, _ = em_reference(m.bases, x, num_stages)
    assert (m(x) - expected).abs().max() < 1e-8
    assert torch.equal(m.bases, before)  # eval mode leaves the bases alone


def test_training_moves_the_bases_by_momentum_towards_the_normalised_batch_mean():
    torch.manual_seed(1)
    m = EMAttention(C, num_bases=K, num_stages=2, momentum=0.3).double().train()
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    before = m.bases.clone()
    recon, final = em_reference(before, x, 2)
    assert (m(x) - recon).abs().max() < 1e-8
    mean = final.mean(0, keepdim=True)
    mean = mean / mean.norm(dim=1, keepdim=True)
    assert (m.bases - (0.7 * before + 0.3 * mean)).abs().max() < 1e-8
    assert (m.bases - before).abs().max() > 1e-3


def test_fresh_bases_are_unit_columns_and_the_em_runs_without_gradient():
    m = EMAttention(C, num_bases=K)
    assert m.bases.shape == (1, C, K) and torch.allclose(m.bases.norm(dim=1), torch.ones(1, K))
    x = torch.randn(B, C, H, W, requires_grad=True)
    assert not m(x).requires_grad and not list(m.parameters())


@pytest.mark.parametrize("kwargs,message", [(dict(num_stages=0), "num_stages >= 1"), (dict(momentum=1.5), "momentum must be")])
def test_bad_options_are_one_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EMAttention(C, **kwargs)


def _ddp_step(rank: int, world: int, init: str, out_dir: str) -> None:
    """One DDP training step of a tiny EMAHead on this rank's own batch; saves the bases before and after
    and this rank's batch-mean of the final EM bases."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from segattn.models.heads.emanet import EMAHead

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.manual_seed(0)  # the same weights and bases on every rank
    head = EMAHead(4, 3, channels=4, ema_channels=C, num_bases=K, num_stages=2, momentum=0.5).double()
    ddp = DistributedDataParallel(head, broadcast_buffers=False)  # equal bases must come from the head's own averaging
    torch.manual_seed(100 + rank)  # a different batch on each rank
    x, target = torch.randn(B, 4, H, W, dtype=torch.float64), torch.randint(0, 3, (B, H, W))
    before = head.ema_module.bases.clone()
    with torch.no_grad():
        feats = head.ema_mid_conv(head.ema_in_conv.train()(x))
        local = head.ema_module.em(feats.flatten(2))[0].mean(0, keepdim=True)
    optimizer = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(ddp(x)["out"], target)
    loss.backward()
    optimizer.step()
    torch.save({"before": before, "after": head.ema_module.bases.clone(), "local": local}, f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_process_ddp_step_leaves_the_same_bases_on_both_ranks(tmp_path):
    """As mmseg: each rank's batch-mean bases are averaged across processes before the momentum update."""
    import torch.multiprocessing as mp

    mp.spawn(_ddp_step, args=(2, f"file://{tmp_path / 'store'}", str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert torch.equal(r0["before"], r1["before"]) and (r0["local"] - r1["local"]).abs().max() > 1e-3
    torch.testing.assert_close(r0["after"], r1["after"], rtol=0, atol=1e-12)
    mean = (r0["local"] + r1["local"]) / 2
    expected = 0.5 * r0["before"] + 0.5 * mean / mean.norm(dim=1, keepdim=True)
    assert (r0["after"] - expected).abs().max() < 1e-8


def test_channels_last_input_gives_the_same_values_in_its_own_layout():
    torch.manual_seed(2)
    m = EMAttention(C, num_bases=K).double().eval()
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    out = m(x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert (out - m(x)).abs().max() < 1e-12
