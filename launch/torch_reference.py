"""A plain PyTorch SimCLR step, the yardstick for ``benchmark.py --compare_torch``.

What our users run today: a torchvision-style ResNet (v1.5 blocks, CIFAR stem:
3×3 conv stride 1, no max-pool) with the same width, the same projector
(Linear → BN → ReLU → Linear) and NT-Xent over both views passed through the
encoder in one call — the same network and objective as the ssl_pairs SimCLR
config it is compared with (``tests/test_torch_reference.py`` checks that the
parameter counts and the loss agree) — trained by ``torch.optim.SGD``
(momentum 0.9) in eager mode on ``torch.get_num_threads()`` threads.

Optional: torch is not in requirements.txt (the CPU wheel is ~190 MB);
``available()`` says whether it is installed.
"""

import statistics
import time


def available() -> bool:
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


def version() -> str:
  import torch  # pylint: disable=g-import-not-at-top
  return torch.__version__.split('+')[0]


_STAGES = {'resnet18': ((2, 2, 2, 2), False), 'resnet34': ((3, 4, 6, 3), False),
           'resnet50': ((3, 4, 6, 3), True)}


def build(arch: str, width_multiplier: float, proj_hidden_dim: int,
          proj_dim: int, proj_layers: int = 2):
  """The torch twin of ``models.resnet`` + ``heads.MLPHead`` (SimCLR)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  if arch not in _STAGES:
    raise ValueError(f'The torch reference has {", ".join(_STAGES)}, not '
                     f'{arch!r}.')
  stages, bottleneck = _STAGES[arch]
  width = max(1, int(round(64 * width_multiplier)))

  class Block(nn.Module):
    """torchvision's BasicBlock / Bottleneck (v1.5: stride on the 3×3)."""

    def __init__(self, cin, filters, stride):
      super().__init__()
      out = filters * (4 if bottleneck else 1)
      if bottleneck:
        layers = [nn.Conv2d(cin, filters, 1, bias=False),
                  nn.BatchNorm2d(filters), nn.ReLU(inplace=True),
                  nn.Conv2d(filters, filters, 3, stride, 1, bias=False),
                  nn.BatchNorm2d(filters), nn.ReLU(inplace=True),
                  nn.Conv2d(filters, out, 1, bias=False), nn.BatchNorm2d(out)]
      else:
        layers = [nn.Conv2d(cin, filters, 3, stride, 1, bias=False),
                  nn.BatchNorm2d(filters), nn.ReLU(inplace=True),
                  nn.Conv2d(filters, filters, 3, 1, 1, bias=False),
                  nn.BatchNorm2d(filters)]
      self.body = nn.Sequential(*layers)
      self.proj = (nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False),
                                 nn.BatchNorm2d(out))
                   if stride != 1 or cin != out else nn.Identity())
      self.out = out

    def forward(self, x):
      return torch.relu(self.body(x) + self.proj(x))

  layers = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True)]
  cin = width
  for i, n in enumerate(stages):
    for j in range(n):
      block = Block(cin, width * 2**i, 2 if i > 0 and j == 0 else 1)
      layers.append(block)
      cin = block.out
  layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
  head = []
  for _ in range(proj_layers - 1):
    head += [nn.Linear(cin, proj_hidden_dim), nn.BatchNorm1d(proj_hidden_dim),
             nn.ReLU(inplace=True)]
    cin = proj_hidden_dim
  head.append(nn.Linear(cin, proj_dim))
  return nn.Sequential(nn.Sequential(*layers), nn.Sequential(*head))


def nt_xent(z, temperature: float):
  """Classic two-view NT-Xent; z = [view-1 embeddings; view-2 embeddings]."""
  import torch  # pylint: disable=g-import-not-at-top
  z = torch.nn.functional.normalize(z, dim=1)
  n = z.shape[0] // 2
  s = z @ z.T / temperature
  s = s.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device),
                    float('-inf'))
  target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
  return torch.nn.functional.cross_entropy(s, target)


class SimCLRStep:
  """Model, optimizer and one training step, fed NHWC uint8 or 0–255 views."""

  def __init__(self, config, lr: float = 0.1, seed: int = 0,
               device: str = 'cpu', channels_last: bool = False,
               compile_model: bool = False):
    import torch  # pylint: disable=g-import-not-at-top
    torch.manual_seed(seed)
    # model.dtype=bfloat16: autocast (bf16 convolutions and matmuls, fp32
    # parameters), the torch counterpart of our mixed precision.
    self.bf16 = config.model.dtype == 'bfloat16'
    self.device = torch.device(device)
    self.channels_last = channels_last
    m = config.method
    self.model = build(config.model.arch, config.model.width_multiplier,
                       m.proj_hidden_dim, m.proj_dim, m.proj_layers)
    self.model.to(self.device)
    if channels_last:
      self.model = self.model.to(memory_format=torch.channels_last)
    self.model.train()
    self.forward = torch.compile(self.model) if compile_model else self.model
    self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9,
                               weight_decay=config.optim.weight_decay)
    self.temperature = m.temperature

  def to_input(self, view1, view2):
    """Both views as one normalised float NCHW tensor."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top
    if isinstance(view1, torch.Tensor):  # Already on the device (uint8).
      x = torch.cat([view1, view2])
    else:
      x = torch.from_numpy(np.concatenate([np.asarray(view1),
                                           np.asarray(view2)]))
    x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
    x = (x.float().div_(255.0) - 0.5) / 0.25
    if self.channels_last:
      x = x.contiguous(memory_format=torch.channels_last)
    return x

  def __call__(self, view1, view2) -> float:
    import torch  # pylint: disable=g-import-not-at-top
    loss = self.step(view1, view2)
    return float(loss)

  def step(self, view1, view2):
    """One update; returns the loss tensor (no host sync)."""
    import torch  # pylint: disable=g-import-not-at-top
    x = self.to_input(view1, view2)
    with torch.autocast(self.device.type, dtype=torch.bfloat16,
                        enabled=self.bf16):
      z = self.forward(x)
    loss = nt_xent(z.float(), self.temperature)
    self.opt.zero_grad(set_to_none=True)
    loss.backward()
    self.opt.step()
    return loss


def bench(config, host_batch, batches_iter, steps: int):
  """(step-alone median s, end-to-end median s) of the torch step.

  Step alone reuses one host batch; end to end pulls each batch from
  ``batches_iter`` (our grain pipeline, host augmentation) first, as a torch
  DataLoader loop would."""
  step = SimCLRStep(config)

  def median(get):
    times = []
    for i in range(steps + 2):
      t = time.perf_counter()
      b = get()
      step(b['view1'], b['view2'])
      if i >= 2:
        times.append(time.perf_counter() - t)
    return statistics.median(times)

  return median(lambda: host_batch), median(lambda: next(batches_iter))


def bench_device(config, device: str, steps: int = 20,
                 channels_last: bool = True, compile_model: bool = False,
                 seed: int = 0):
  """The torch step on ``device`` with a batch already there.

  Returns {'first_step_s' (includes torch.compile's compilation),
  'step_ms' (median), 'pairs_per_s'}: each timed step ends with a device
  synchronise, as a JAX step timed with ``block_until_ready``.
  """
  import torch  # pylint: disable=g-import-not-at-top
  step = SimCLRStep(config, device=device, channels_last=channels_last,
                    compile_model=compile_model, seed=seed)
  size, batch = config.data.image_size, config.batch_size
  gen = torch.Generator().manual_seed(seed)
  views = [torch.randint(0, 256, (batch, size, size, 3), generator=gen,
                         dtype=torch.uint8).to(step.device) for _ in range(2)]
  sync = (torch.cuda.synchronize if step.device.type == 'cuda'
          else (lambda: None))
  t = time.perf_counter()
  step.step(*views)
  sync()
  first = time.perf_counter() - t
  times = []
  for _ in range(steps + 2):
    t = time.perf_counter()
    step.step(*views)
    sync()
    times.append(time.perf_counter() - t)
  median = statistics.median(times[2:])
  return {'first_step_s': first, 'step_ms': 1e3 * median,
          'pairs_per_s': batch / median}
