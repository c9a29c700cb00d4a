"""``python -m ssl_pairs COMMAND [FLAGS]``: the ``ssl-pairs`` command."""

from ssl_pairs.tools import command

if __name__ == '__main__':
  command.main()
