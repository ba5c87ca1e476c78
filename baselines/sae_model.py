"""Sequential autoencoders with a latent dynamics model (Sedler, Versteeg & Pandarinath 2023), plain PyTorch.

Bidirectional GRU encoder over the held-in spikes -> initial latent state -> latent trajectory over the
window and the forward bins by a dynamics model -> linear readout to log-rates of every neuron. NODE-SAE's
dynamics are an MLP vector field f integrated by fixed residual Euler steps h <- h + dt * f(h) (the paper's
ablation found the residual form essential; `residual=False` gives h <- f(h)); GRU-SAE's are an input-free
GRU cell whose hidden state is the latent state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

DYNAMICS = ("node", "gru")


@dataclass(frozen=True)
class SAEDims:
    n_in: int
    n_out: int  # held-in + held-out neurons
    n_fwd: int
    latent_dim: int
    enc_dim: int
    vf_hidden: int
    vf_layers: int
    dynamics: str
    step_size: float
    residual: bool
    dropout: float


class VectorField(nn.Module):
    """f(h): an MLP of `layers` tanh hidden layers of `hidden` units (the NODE's vector field)."""

    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__()
        parts: list[nn.Module] = []
        width = dim
        for _ in range(layers):
            parts += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        parts.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*parts)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def euler_step(field: nn.Module, h: torch.Tensor, dt: float, residual: bool = True) -> torch.Tensor:
    """One fixed step: h + dt * f(h) (residual Euler), or f(h) when not residual."""
    return h + dt * field(h) if residual else field(h)


class NodeDynamics(nn.Module):
    """Latent trajectory by residual Euler steps of an MLP vector field."""

    def __init__(self, d: SAEDims):
        super().__init__()
        self.field = VectorField(d.latent_dim, d.vf_hidden, d.vf_layers)
        self.dt, self.residual = d.step_size, d.residual

    def step(self, h: torch.Tensor) -> torch.Tensor:
        return euler_step(self.field, h, self.dt, self.residual)


class GRUDynamics(nn.Module):
    """Latent trajectory of an input-free GRU cell (its hidden state is the latent state)."""

    def __init__(self, d: SAEDims):
        super().__init__()
        self.cell = nn.GRUCell(1, d.latent_dim)

    def step(self, h: torch.Tensor) -> torch.Tensor:
        return self.cell(h.new_zeros(h.shape[0], 1), h)


class SAE(nn.Module):
    """Encoder -> initial state -> dynamics over T + forward steps -> linear readout to log-rates."""

    def __init__(self, d: SAEDims):
        super().__init__()
        if d.dynamics not in DYNAMICS:
            raise ValueError(f"dynamics must be one of {DYNAMICS}")
        self.dims = d
        self.encoder = nn.GRU(d.n_in, d.enc_dim, batch_first=True, bidirectional=True)
        self.to_state = nn.Linear(2 * d.enc_dim, d.latent_dim)
        self.dynamics = NodeDynamics(d) if d.dynamics == "node" else GRUDynamics(d)
        self.dropout = nn.Dropout(d.dropout)
        self.readout = nn.Linear(d.latent_dim, d.n_out)

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        """(B, latent) initial state from the (B, T, n_in) held-in spikes (final states of both directions).

        Dropout acts where the paper's does: on the encoder's final states and on the initial state itself
        (so training rolls the dynamics out from perturbed starts); the spikes and the trajectory have none.
        """
        _, h_n = self.encoder(x)
        return self.dropout(self.to_state(self.dropout(torch.cat([h_n[0], h_n[1]], dim=1))))

    def latents(self, x: torch.Tensor, n_steps: int) -> torch.Tensor:
        """(B, n_steps, latent) trajectory starting at the encoded initial state."""
        h = self.initial_state(x)
        states = [h]
        for _ in range(n_steps - 1):
            h = self.dynamics.step(h)
            states.append(h)
        return torch.stack(states, dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-rates (B, T + F, n_out), latents (B, T + F, latent)) for held-in spikes x (B, T, n_in)."""
        lat = self.latents(x, x.shape[1] + self.dims.n_fwd)
        return self.readout(lat), lat
