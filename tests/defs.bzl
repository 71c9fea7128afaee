"""`linr_py_test`: one Bazel py_test per pytest file (see tests/BUILD)."""

def linr_py_test(name, src, conftest = True, deps = [], data = [], size = "medium", tags = [], args = [], **kwargs):
    """Runs pytest on `src` (a file of this package, e.g. "ops/foo_test.py").

    Args:
      name: target name.
      src: the pytest file.
      conftest: also ship tests/conftest.py and the shared test helpers; False
        runs pytest with --noconftest (self-contained tests such as the op tests).
      deps: extra py deps; //linr_tf (with the op library) is always included.
      data: extra runtime files.
      size: Bazel test size.
      tags: Bazel tags.
      args: extra pytest arguments.
      **kwargs: passed to py_test.
    """
    native.py_test(
        name = name,
        srcs = [src, "pytest_runner.py"],
        main = "pytest_runner.py",
        args = ["$(location %s)" % src] + ([] if conftest else ["--noconftest"]) + args,
        python_version = "PY3",
        srcs_version = "PY3",
        deps = ["//linr_tf"] + ([":test_support"] if conftest else []) + deps,
        data = data,
        size = size,
        tags = tags,
        **kwargs
    )
