"""The README and the example env file keep documenting every setting the code reads."""

import pytest

from service.config import ROOT, Config


@pytest.mark.parametrize("document", ["README.md", "deploy/aftercare.env.example"])
def test_every_setting_is_documented(document):
    text = (ROOT / document).read_text()
    missing = [key for key in Config().as_dict() if key not in text]
    assert missing == []
