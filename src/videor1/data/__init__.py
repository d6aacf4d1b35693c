"""Video-R1 data: records, media decoding and frame sampling, prompts, collation, procedural tasks.

Submodules are imported directly (``videor1.data.media``, ``videor1.data.records`` …) so that
importing the package stays cheap: nothing here pulls in torch or PyAV.
"""
