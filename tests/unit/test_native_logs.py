"""Native log lines: mediapipe's known noise is dropped, anything else written meanwhile still arrives."""

import os
import threading

from dinar_core.native_logs import filtered_native_stderr

NOISE = (b"W0000 00:00:1795580813.643939    3024 inference_feedback_manager.cc:114] Feedback manager requires a "
         b"model with a single signature inference. Disabling support for feedback tensors.\n")


def test_noise_dropped_other_lines_kept_in_order(capfd):
    with filtered_native_stderr():
        os.write(2, NOISE)
        os.write(2, b"E0000 00:00:1.0 1 calculator_graph.cc:12] a real error\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"something else\n")
    err = capfd.readouterr().err
    assert "Feedback manager" not in err and "XNNPACK" not in err
    assert err.index("a real error") < err.index("something else")


def test_restores_stderr_after_an_exception(capfd):
    try:
        with filtered_native_stderr():
            os.write(2, b"kept before the error\n")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "kept before the error" in err and err.rstrip().endswith("after")


def test_another_threads_output_is_not_lost(capfd):
    started, release = threading.Event(), threading.Event()

    def other():
        started.wait()
        os.write(2, b"from another thread\n")
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with filtered_native_stderr():
        started.set()
        release.wait(5)
    t.join()
    assert "from another thread" in capfd.readouterr().err


def test_mediapipe_prints_no_native_noise(capfd, samples_dir):
    import cv2

    from dinar_core.keypoints.mediapipe import MediapipeKeypointDetector

    rgb = cv2.cvtColor(cv2.imread(str(samples_dir / "sports2d_2.png")), cv2.COLOR_BGR2RGB)
    detector = MediapipeKeypointDetector()
    assert detector.detect(rgb) is not None
    err = capfd.readouterr().err
    assert "W0000" not in err and "XNNPACK" not in err, err[:500]
