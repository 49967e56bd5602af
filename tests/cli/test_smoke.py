from divekit import __version__
from divekit.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_model_suggests_closest(capsys):
    assert main(["train", "lenett", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'lenett'" in err and "Did you mean 'lenet'" in err
