"""fewshot: tell who is speaking after hearing each person for 15 to 35 seconds."""

__version__ = "0.1.0"
