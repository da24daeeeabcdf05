from astrounsup._docparams import parameter_docs


def _documented(a, b, *, c=1, **extra):
    """Do it.

    Parameters
    ----------
    a, b : int
        Two numbers,
        on two lines.
    c : float, optional
    **extra
        Anything else.

    Returns
    -------
    x : int
        Not a parameter.
    """


def test_shared_and_empty_descriptions_and_no_other_section():
    docs = parameter_docs(_documented)
    assert docs == {
        "a": ("int", "Two numbers, on two lines."),
        "b": ("int", "Two numbers, on two lines."),
        "c": ("float, optional", ""),
        "extra": ("", "Anything else."),
    }


def test_an_object_without_parameters_has_none():
    assert parameter_docs(lambda: None) == {}
    assert parameter_docs(test_an_object_without_parameters_has_none) == {}
