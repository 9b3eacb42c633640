"""The API's documentation page works on a machine without internet: /docs loads Swagger UI from
the server itself, never from a CDN."""

from fastapi.testclient import TestClient

import semhash
from semhash.hashing.baselines import ITQ


def test_the_docs_page_and_its_assets_come_from_the_server(tmp_path):
    data = semhash.load_dataset("digits", "train")
    ITQ(bits=16).fit(data).save(tmp_path / "d.semhash")
    semhash.build_index(tmp_path / "d.db", tmp_path / "d.semhash", data)
    with TestClient(semhash.create_app(str(tmp_path / "d.db")), base_url="http://127.0.0.1") as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text
        assert "cdn" not in page.text.lower() and "https://" not in page.text.replace("https://fastapi", "")
        assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
        assert client.get("/docs-assets/swagger-ui.css").status_code == 200
