"""A DDPM ancestral step between any two timesteps, so that ``--sampler ddpm --steps N`` takes N steps.

MONAI's DDPMScheduler.step always goes from t to t-1 (a 10-step request walked every training timestep: 701 UNet
passes from 70% noise); this is the strided form of the same posterior (Ho et al. 2020, eq. 6-7, with the
alphas of the step's span, as diffusers' DDPMScheduler does): from t to t-1 it equals MONAI's step.
"""

from __future__ import annotations

import torch

from ..errors import DiffuGTSError


def ddpm_step(scheduler, model_output: torch.Tensor, timestep: int, previous: int, sample: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """x at ``previous`` (< ``timestep``; -1 for the clean sample) drawn from the posterior given x at ``timestep``."""
    variance_type = str(getattr(scheduler.variance_type, "value", scheduler.variance_type))
    if variance_type not in ("fixed_small", "fixed_large"):
        raise DiffuGTSError(f"the ddpm sampler supports fixed variances only, not {variance_type!r}",
                            hint="Use --sampler ddim.")
    alpha_t = scheduler.alphas_cumprod[timestep]
    alpha_prev = scheduler.alphas_cumprod[previous] if previous >= 0 else scheduler.one
    beta_t, beta_prev = 1 - alpha_t, 1 - alpha_prev
    span_alpha = alpha_t / alpha_prev
    span_beta = 1 - span_alpha
    prediction = str(getattr(scheduler.prediction_type, "value", scheduler.prediction_type))
    if prediction == "epsilon":
        original = (sample - beta_t**0.5 * model_output) / alpha_t**0.5
    elif prediction == "sample":
        original = model_output
    else:  # v_prediction
        original = alpha_t**0.5 * sample - beta_t**0.5 * model_output
    if scheduler.clip_sample:
        original = torch.clamp(original, *scheduler.clip_sample_values)
    mean = (alpha_prev**0.5 * span_beta / beta_t) * original + (span_alpha**0.5 * beta_prev / beta_t) * sample
    if timestep == 0:
        return mean
    variance = torch.clamp(beta_prev / beta_t * span_beta, min=1e-20) if variance_type == "fixed_small" else span_beta
    noise = torch.randn(model_output.size(), dtype=model_output.dtype, layout=model_output.layout,
                        generator=generator, device=model_output.device)
    return mean + variance**0.5 * noise
