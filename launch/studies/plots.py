"""Plots a study declares (``studies.Plot(file, alt, draw)``): each draws the
collected records ({run name: record}) into a PNG."""

from typing import Callable, Dict, Sequence, Tuple

from launch import cpu_scale


def pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _value(r, dataset: str, metric: str) -> float:
  return r['results'].get(dataset, {}).get(metric, 0.0)


def bars(*, group: str, hue: str, hues: Sequence[Tuple[str, float]],
         dataset: str = 'cifar10', metric: str = 'probe',
         floor: Callable[[Dict], bool] = lambda r: False,
         floor_label: Callable[[Dict], str] = lambda r: r['name'],
         ylabel: str = 'CIFAR-10 linear probe top-1 %'):
  """``draw``: one bar per record at its ``group`` label's tick, shifted by
  its ``hue`` label's offset (``hues``: (label, offset)); the records
  ``floor`` picks are dotted/dashed horizontal lines instead."""
  def draw(results, path):
    plt = pyplot()
    groups = list(dict.fromkeys(r[group] for r in results.values()
                                if not floor(r)))
    fig, ax = plt.subplots(figsize=(1.2 * len(groups) + 2, 3.6))
    for name, offset in hues:
      xs, ys = [], []
      for i, g in enumerate(groups):
        for r in results.values():
          if r[group] == g and r[hue] == name:
            xs.append(i + offset)
            ys.append(_value(r, dataset, metric))
      if xs:
        ax.bar(xs, ys, width=0.4, label=name)
    for i, r in enumerate(r for r in results.values() if floor(r)):
      ax.axhline(_value(r, dataset, metric), color='k',
                 linestyle=(':', '--')[i % 2], linewidth=1,
                 label=floor_label(r))
    ax.set_xticks(range(len(groups)), groups)
    top = max((_value(r, dataset, metric) for r in results.values()),
              default=0.0)
    ax.set_ylim(0, max(top, 1.0) * 1.35)  # Room for the legend above.
    ax.legend(fontsize=8, ncol=2, loc='upper left')
    cpu_scale.finish_figure(fig, ax, path, ylabel, legend=False)
  return draw


def curves(*, key: str, colour: str, style: str, styles: Dict[str, str],
           ylabel: str, log: bool = False):
  """``draw``: the monitor curve ``key`` (a record's ``curve``) against
  step, one line per record: its ``colour`` label picks the colour, its
  ``style`` label the line style (``styles``; ':' otherwise)."""
  def draw(results, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colours = {}
    for r in results.values():
      curve = r.get('curve', {})
      if key not in curve:
        continue
      c = colours.setdefault(r[colour], f'C{len(colours) % 10}')
      ax.plot(curve['step'], curve[key], styles.get(r[style], ':'), color=c,
              label=f'{r[colour]} {r[style]}', linewidth=1.2)
    ax.set_xlabel('step')
    if log:
      ax.set_yscale('log')
    ax.legend(fontsize=7, ncol=3)
    cpu_scale.finish_figure(fig, ax, path, ylabel, legend=False)
  return draw
