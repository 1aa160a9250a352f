from hmr.core.utils.machine import machine_line


def test_machine_line_names_threads_cores_and_load():
    line = machine_line(3)
    assert line.startswith("3 threads of ")
    assert "cores" in line and "load " in line
    assert machine_line(1).startswith("1 thread of ")
