"""The DDPG critic Q(s, a)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.models.base import mlp, reset_mlp


class Critic(nn.Module):
    r"""Action-value network of the DDPG decision layer (paper §3.2, eq. 4):

    .. math::
        Q_\phi(\mathbf{s}, \mathbf{a}) = \mathrm{MLP}_\phi([\,\mathbf{s} \,\|\, \mathbf{a}\,]),

    trained towards :math:`y = r + \gamma (1 - d)\, Q_{\phi'}(\mathbf{s}', \mu_{\theta'}
    (\mathbf{s}'))` with target networks :math:`\phi', \theta'`.

    Args:
        state_dim (int): State size :math:`S`.
        action_dim (int): Action size :math:`D`.
        hidden (list[int]): Hidden layer sizes.

    Shapes:
        - **input:** states :math:`(B, S)`, actions :math:`(B, D)`
        - **output:** values :math:`(B,)`
    """

    def __init__(self, state_dim: int, action_dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.net = mlp([state_dim + action_dim, *hidden, 1])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_mlp(self.net)
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.uniform_(last.weight, -3e-3, 3e-3)
        nn.init.uniform_(last.bias, -3e-3, 3e-3)

    def forward(self, state: Tensor, action: Tensor) -> Tensor:
        return self.net(torch.cat([state, action], dim=-1)).squeeze(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.state_dim}, {self.action_dim})"
