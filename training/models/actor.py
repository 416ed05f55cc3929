"""The DDPG actor μ(s): state → continuous preference vector."""

from __future__ import annotations

from torch import Tensor, nn

from training.models.base import mlp, reset_mlp


class Actor(nn.Module):
    r"""Deterministic policy network of the DDPG decision layer (paper §3.2, eq. 5; the action
    design follows LIRD, Zhao et al. 2018, and DRR, Liu et al. 2018):

    .. math::
        \mathbf{a} = \mu_\theta(\mathbf{s}) = \tanh(\mathrm{MLP}_\theta(\mathbf{s}))
        \in [-1, 1]^{D}

    The action is a preference vector in the item embedding space; it re-weights item scores
    through :math:`\langle \mathbf{u} + \alpha s \mathbf{a}, \mathbf{i} \rangle`.

    Args:
        state_dim (int): State size (user vector and mean of recent item vectors: :math:`2D`).
        action_dim (int): Action size :math:`D`.
        hidden (list[int]): Hidden layer sizes.

    Shapes:
        - **input:** states :math:`(B, S)`
        - **output:** actions :math:`(B, D)` in :math:`[-1, 1]`
    """

    def __init__(self, state_dim: int, action_dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.net = mlp([state_dim, *hidden, action_dim])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_mlp(self.net)
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        # Small initial actions, as in DDPG (Lillicrap et al. 2016): start near u' = u.
        nn.init.uniform_(last.weight, -3e-3, 3e-3)
        nn.init.uniform_(last.bias, -3e-3, 3e-3)

    def forward(self, state: Tensor) -> Tensor:
        return self.net(state).tanh()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.state_dim}, {self.action_dim})"
