"""The tabs of the Emotion Detection page (``pages/2_emotion_detection.py``), one module each:
``photos``, ``batch`` (batches and their campaign comparison), ``live`` (the camera), ``video``
and ``history`` (saved results, trends and the emotion-groups editor); ``common`` holds what
several tabs share (the recognizer, the campaign/location fields and *Save results* switch,
saving to the results store). Each tab module has one ``render()`` that draws the tab.

The modules keep no state of their own: what must survive a rerun lives in ``st.session_state``."""
