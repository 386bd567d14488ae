"""The U-Net and its attention: shapes, equality with PyTorch's attention, the padding mask, learning."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from course.attention import MultiHeadAttention, attention, causal_mask
from course.autoencoder import Autoencoder, kl_divergence, psnr, reconstruction_loss
from course.unet import UNet, UNetConfig, config_dict

SMALL = UNetConfig(in_channels=4, out_channels=4, channels=(16, 32, 32), attention=(False, True, True), heads=2, context_dim=24)


@pytest.mark.parametrize("size", [8, 16, 32])
def test_output_shape_follows_the_input_at_every_resolution(size):
    model = UNet(SMALL)
    x = torch.randn(3, 4, size, size)
    out = model(x, torch.tensor([1, 500, 1000]), torch.randn(3, 7, 24), torch.ones(3, 7))
    assert out.shape == x.shape


def test_bad_inputs_are_clear_errors():
    model = UNet(SMALL)
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.randn(1, 4, 10, 10), torch.tensor([3]))
    with pytest.raises(ValueError, match="context width must be 24"):
        model(torch.randn(1, 4, 8, 8), torch.tensor([3]), torch.randn(1, 5, 32))
    with pytest.raises(ValueError, match="one entry per level"):
        UNetConfig(channels=(16, 32), attention=(True,))


def test_attention_equals_pytorch_scaled_dot_product_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 8, generator=g) for _ in range(3))
    mask = torch.rand(2, 1, 6, 6, generator=g) > 0.3
    mask[..., 0] = True  # every query keeps at least one key
    assert torch.allclose(attention(q, k, v, mask), F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-6)
    causal = causal_mask(6)
    assert torch.allclose(attention(q, k, v, causal), F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)


def test_padding_tokens_receive_no_attention():
    torch.manual_seed(1)
    attn = MultiHeadAttention(16, 4, context_dim=12)
    x, context = torch.randn(2, 9, 16), torch.randn(2, 5, 12)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out = attn(x, context, mask[:, None, None, :])
    scrambled = context.clone()
    scrambled[0, 3:] = 1000 * torch.randn(2, 12)  # change only the padded tokens of sample 0
    assert torch.allclose(attn(x, scrambled, mask[:, None, None, :]), out, atol=1e-5)
    model = UNet(SMALL)
    ctx = torch.randn(2, 5, 24)
    noisy = ctx.clone()
    noisy[0, 3:] = 50.0
    x_t, t = torch.randn(2, 4, 8, 8), torch.tensor([10, 20])
    assert torch.allclose(model(x_t, t, ctx, mask), model(x_t, t, noisy, mask), atol=1e-5)


def test_pooled_conditioning_reaches_the_output():
    torch.manual_seed(3)
    model = UNet(replace(SMALL, pooled=True))
    x_t, t = torch.randn(2, 4, 8, 8), torch.tensor([10, 20])
    ctx = torch.randn(2, 5, 24)
    torch.nn.init.normal_(model.conv_out.weight)  # the output layer starts at zero: make it pass signal
    out = model(x_t, t, ctx)
    with torch.no_grad():
        model.add_embedding.proj.weight.zero_()
        model.add_embedding.proj.bias.zero_()
        model.add_embedding.norm2.bias.zero_()
    assert not torch.allclose(model(x_t, t, ctx), out, atol=1e-4)  # the pooled path changed the output


def test_pooled_option_needs_text_and_configs_record_it():
    with pytest.raises(ValueError, match="needs text states"):
        UNet(replace(SMALL, context_dim=None, pooled=True))
    assert config_dict(replace(SMALL, pooled=True))["pooled"] is True and config_dict(SMALL)["layers_per_block"] == 1


def test_an_all_true_mask_is_the_same_as_no_mask():
    model = UNet(SMALL)
    torch.nn.init.normal_(model.conv_out.weight)
    x_t, t, ctx = torch.randn(2, 4, 8, 8), torch.tensor([10, 20]), torch.randn(2, 5, 24)
    assert torch.equal(model(x_t, t, ctx, torch.ones(2, 5, dtype=torch.bool)), model(x_t, t, ctx))


def test_the_unet_overfits_one_batch():
    torch.manual_seed(2)
    model = UNet(SMALL)
    x, t = torch.randn(4, 4, 8, 8), torch.randint(1, 1000, (4,))
    ctx, mask = torch.randn(4, 6, 24), torch.ones(4, 6)
    target = torch.randn(4, 4, 8, 8)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = F.mse_loss(model(x, t, ctx, mask), target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_autoencoder_round_trip_learns():
    torch.manual_seed(3)
    ae = Autoencoder()
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    x = F.avg_pool2d(x, 8).repeat_interleave(8, -1).repeat_interleave(8, -2)  # a blocky image the AE can learn fast
    recon, mean, logvar = ae(x)
    assert recon.shape == x.shape and mean.shape == (4, 4, 8, 8)
    opt = torch.optim.AdamW(ae.parameters(), lr=2e-3)
    before = psnr(x, recon.detach())
    for _ in range(120):
        recon, mean, logvar = ae(x)
        loss = reconstruction_loss(x, recon) + 1e-6 * kl_divergence(mean, logvar)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert psnr(x, ae.decode(ae.encode(x)[0]).detach()) > before + 6
    assert kl_divergence(torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 8, 8)).item() == 0


def test_foreground_mask_finds_the_object_and_weights_it():
    from course.autoencoder import foreground_mask

    x = torch.full((1, 3, 16, 16), 0.8)
    x[..., 6:9, 6:9] = -0.5  # a 3×3 dark object on a light background
    mask = foreground_mask(x)
    assert mask.shape == (1, 1, 16, 16)
    assert mask[0, 0, 5:10, 5:10].eq(1).all() and mask.sum() == 25  # the object and its 1-pixel rim
    x_hat = x.clone()
    x_hat[..., 7, 7] = 0.8  # the object loses a pixel: weighted, that costs 11 times more
    plain, weighted = reconstruction_loss(x, x_hat, edge_weight=0), reconstruction_loss(x, x_hat, edge_weight=0, object_weight=10)
    torch.testing.assert_close(weighted, 11 * plain)
