"""End to end in a real headless Chromium (Selenium): a patient types in the widget on a
clinic's page (another origin, allowed by chat.allowed_origins), an agent signed in to the
console sees it and replies, the patient sees the reply. Script sent as chat text stays
inert on both sides. Screenshots are kept in .build/test-artifacts/ (SWITCHBOARD_ARTIFACTS)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

import switchboard_harness as h
from test_console import PASSWORD, with_password

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("SWITCHBOARD_ARTIFACTS", Path(__file__).resolve().parent.parent / ".build" / "test-artifacts"))
XSS_IMG = '<img src=x onerror="document.title=\'pwned-img\'">'
XSS_SCRIPT = "<script>document.title='pwned-script'</script>"

pytestmark = pytest.mark.skipif(not (os.access(CHROMIUM, os.X_OK) and os.access(DRIVER, os.X_OK)),
                                reason="chromium and chromium-driver are not installed (make test-deps)")


def browser(profile: Path, width: int = 1280, height: int = 900):
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach the network
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", f"--user-data-dir={profile}", "--no-first-run",
                     "--no-default-browser-check", "--disable-extensions"]:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


class Site:
    """The clinic's own web site on another port: a page with the widget's one script tag."""

    def __init__(self, root: Path, daemon_url: str):
        root.mkdir(parents=True, exist_ok=True)
        tag = f'<script src="{daemon_url}/widget.js" defer data-title="Chat with Riverside"></script>'
        (root / "index.html").write_text(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Riverside Clinic</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            f"<body><h1>Riverside Clinic</h1><p>Opening hours and directions.</p>{tag}</body></html>")
        (root / "es.html").write_text(
            '<!doctype html><html lang="es"><head><meta charset="utf-8"><title>Clínica Riverside</title></head>'
            f'<body><h1>Clínica</h1><script src="{daemon_url}/widget.js" defer data-language="es"></script></body></html>')
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        handler.log_message = lambda *args: None
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def shadow(driver):
    return driver.find_element(By.CSS_SELECTOR, "[data-switchboard-widget]").shadow_root


def wait(driver, condition, timeout=20, message=""):
    def safe(d):
        try:
            return condition(d)
        except (NoSuchElementException, StaleElementReferenceException):
            return False
    return WebDriverWait(driver, timeout).until(safe, message)


def bubbles(driver, kind: str) -> list[str]:
    return [li.text for li in shadow(driver).find_elements(By.CSS_SELECTOR, f"li.{kind}:not(.pending)")]


def test_patient_and_agent_talk_through_the_widget_and_the_console(make_daemon, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = h.free_port()
    site = Site(tmp_path / "site", f"http://127.0.0.1:{port}")
    d = make_daemon(port=port, overrides={"chat": {"allowed_origins": site.url}})
    agent = with_password(d)
    patient = browser(tmp_path / "patient", 390, 844)  # a phone-sized window
    console = browser(tmp_path / "agent")
    try:
        # --- the patient opens the widget and writes
        patient.get(site.url + "/index.html")
        launcher = wait(patient, lambda b: shadow(b).find_element(By.CSS_SELECTOR, "button.launcher"))
        assert launcher.get_attribute("aria-expanded") == "false"
        assert "Chat with Riverside" in launcher.text
        launcher.click()
        panel = shadow(patient).find_element(By.CSS_SELECTOR, "section.panel")
        assert panel.is_displayed() and launcher.get_attribute("aria-expanded") == "true"
        assert panel.get_attribute("role") == "dialog"
        assert panel.size["width"] <= 390  # fits the phone's screen
        box = shadow(patient).find_element(By.CSS_SELECTOR, "textarea")
        assert patient.execute_script("return arguments[0].getRootNode().activeElement === arguments[1]",
                                      shadow(patient).find_element(By.CSS_SELECTOR, "section.panel"), box)
        box.send_keys("Hello, I need to move my appointment on Friday" + Keys.ENTER)
        wait(patient, lambda b: "Hello, I need to move my appointment on Friday" in " ".join(bubbles(b, "patient")),
             message="the patient's message acknowledged")
        box.send_keys(XSS_IMG + Keys.ENTER)
        box.send_keys(XSS_SCRIPT + Keys.ENTER)
        wait(patient, lambda b: len(bubbles(b, "patient")) == 3, message="all three acknowledged")

        # --- the agent signs in to the console and finds it
        console.get(d.url + "/console")
        wait(console, lambda b: b.find_element(By.ID, "signin-email").is_displayed())
        console.find_element(By.ID, "signin-email").send_keys(agent["email"])
        console.find_element(By.ID, "signin-password").send_keys(PASSWORD + Keys.ENTER)
        wait(console, lambda b: b.find_element(By.ID, "app").is_displayed(), message="signed in")
        wait(console, lambda b: b.find_element(By.ID, "live").text == "Live", message="event stream live")
        console.find_element(By.CSS_SELECTOR, "[data-filter='queue']").click()
        item = wait(console, lambda b: b.find_element(By.CSS_SELECTOR, "#inbox button[data-conversation]"))
        item.click()
        wait(console, lambda b: any("move my appointment" in li.text for li in b.find_elements(By.CSS_SELECTOR, "#messages li")),
             message="the patient's message in the console")
        items = [li.text for li in console.find_elements(By.CSS_SELECTOR, "#messages li")]
        # Patient text is text: the markup shows literally and nothing ran.
        assert any(XSS_IMG in text for text in items) and any(XSS_SCRIPT in text for text in items)
        assert console.execute_script("return document.querySelectorAll('#messages img, #messages script').length") == 0
        assert console.title == "Switchboard — agent console"

        # --- the agent replies; the patient sees it
        compose = console.find_element(By.ID, "compose-text")
        compose.send_keys("Of course — would Monday at 9:30 work? <b>bold?</b>")
        console.find_element(By.ID, "send-reply").click()
        wait(console, lambda b: any("Monday at 9:30" in li.text for li in b.find_elements(By.CSS_SELECTOR, "#messages li.outbound")),
             message="the reply in the console")
        reply = wait(patient, lambda b: [t for t in bubbles(b, "agent") if "Monday at 9:30" in t], message="the reply in the widget")
        assert "<b>bold?</b>" in reply[0]
        assert patient.execute_script(
            "return document.querySelector('[data-switchboard-widget]').shadowRoot.querySelectorAll('ol img, ol script, ol b').length") == 0
        assert patient.title == "Riverside Clinic"

        patient.save_screenshot(str(ARTIFACTS / "chat-widget-patient.png"))
        console.save_screenshot(str(ARTIFACTS / "chat-console-agent.png"))

        # --- keyboard: Escape closes the panel and gives focus back to the launcher
        shadow(patient).find_element(By.CSS_SELECTOR, "textarea").send_keys(Keys.ESCAPE)
        wait(patient, lambda b: not shadow(b).find_element(By.CSS_SELECTOR, "section.panel").is_displayed())
        assert launcher.get_attribute("aria-expanded") == "false"

        # --- a reload shows the whole conversation again (the visitor token in the site's storage)
        patient.refresh()
        wait(patient, lambda b: shadow(b).find_element(By.CSS_SELECTOR, "button.launcher")).click()
        wait(patient, lambda b: any("Monday at 9:30" in t for t in bubbles(b, "agent")), message="history after reload")
        assert sum("move my appointment" in t for t in bubbles(patient, "patient")) == 1
    finally:
        for driver in (patient, console):
            driver.quit()
        site.close()
    log = d.log_text()
    assert "move my appointment" not in log and "Monday at 9:30" not in log


def test_the_widget_speaks_spanish_and_is_refused_on_a_site_not_allowed(make_daemon, tmp_path):
    d = make_daemon()  # default: only the daemon's own pages may open /chat
    site = Site(tmp_path / "site", d.url)
    driver = browser(tmp_path / "es")
    try:
        driver.get(site.url + "/es.html")
        launcher = wait(driver, lambda b: shadow(b).find_element(By.CSS_SELECTOR, "button.launcher"))
        assert "Chatee con nosotros" in launcher.text
        launcher.click()
        assert shadow(driver).find_element(By.CSS_SELECTOR, "textarea").get_attribute("placeholder") == "Escriba su mensaje"
        status = wait(driver, lambda b: shadow(b).find_element(By.CSS_SELECTOR, "p.status").text == "El chat no está disponible en esta página."
                      and shadow(b).find_element(By.CSS_SELECTOR, "p.status"), message="refused origin shown")
        assert status.is_displayed()
        # The daemon's own demo page is allowed.
        driver.get(d.url + "/widget/demo")
        wait(driver, lambda b: shadow(b).find_element(By.CSS_SELECTOR, "button.launcher")).click()
        shadow(driver).find_element(By.CSS_SELECTOR, "textarea").send_keys("hola, necesito una cita" + Keys.ENTER)
        wait(driver, lambda b: "hola, necesito una cita" in " ".join(bubbles(b, "patient")), message="acknowledged on the demo page")
    finally:
        driver.quit()
        site.close()
    assert "chat refused: origin not allowed" in d.log_text()


def test_an_online_agent_gets_the_offer_live_and_the_patient_sees_them_join_and_type(make_daemon, tmp_path):
    d = make_daemon()
    agent = with_password(d)
    patient = browser(tmp_path / "patient")
    console = browser(tmp_path / "agent")
    try:
        console.get(d.url + "/console")
        wait(console, lambda b: b.find_element(By.ID, "signin-email").is_displayed())
        console.find_element(By.ID, "signin-email").send_keys(agent["email"])
        console.find_element(By.ID, "signin-password").send_keys(PASSWORD + Keys.ENTER)
        wait(console, lambda b: b.find_element(By.ID, "live").text == "Live", message="event stream live")
        from selenium.webdriver.support.select import Select
        Select(console.find_element(By.ID, "presence")).select_by_value("online")
        h.wait_until(lambda: d.api(agent).get("/me").json()["agent"]["presence"] == "online" or None, 10, 0.1, "agent online")

        patient.get(d.url + "/widget/demo")
        wait(patient, lambda b: shadow(b).find_element(By.CSS_SELECTOR, "button.launcher")).click()
        wait(patient, lambda b: shadow(b).find_element(By.CSS_SELECTOR, ".offer").get_attribute("hidden") is not None,
             message="agents available: no 'nobody available' notice")
        shadow(patient).find_element(By.CSS_SELECTOR, "textarea").send_keys("Do you take walk-ins today?" + Keys.ENTER)

        # The offer arrives live in the console; accepting opens the conversation.
        accept = wait(console, lambda b: b.find_element(By.CSS_SELECTOR, "#offers .offer button.primary"), message="offer shown")
        accept.click()
        wait(console, lambda b: any("walk-ins" in li.text for li in b.find_elements(By.CSS_SELECTOR, "#messages li")),
             message="conversation opened")
        wait(patient, lambda b: "joined the chat" in shadow(b).find_element(By.CSS_SELECTOR, "p.status").text,
             message="agent_joined shown to the patient")
        console.find_element(By.ID, "compose-text").send_keys("Yes")
        wait(patient, lambda b: "typing" in shadow(b).find_element(By.CSS_SELECTOR, "p.status").text,
             message="the agent's typing shown to the patient")
        console.find_element(By.ID, "send-note").click()  # an internal note never reaches the patient
        wait(console, lambda b: b.find_elements(By.CSS_SELECTOR, "#messages li.note"), message="note shown")
        console.find_element(By.ID, "compose-text").send_keys("Yes, until 5pm.")
        console.find_element(By.ID, "send-reply").click()
        wait(patient, lambda b: any("until 5pm" in t for t in bubbles(b, "agent")), message="reply in the widget")
        assert not any(t.strip().endswith("Yes") for t in bubbles(patient, "agent"))
        console.find_element(By.ID, "resolve").click()
        wait(patient, lambda b: "resolved" in shadow(b).find_element(By.CSS_SELECTOR, "p.status").text, message="resolved shown")
        console.save_screenshot(str(ARTIFACTS / "chat-console-offer.png"))
    finally:
        patient.quit()
        console.quit()


def test_nobody_available_the_widget_offers_to_continue_by_text_message(make_daemon, fake_twilio, tmp_path):
    import sms_harness as sms
    from selenium.webdriver.support.select import Select
    d = make_daemon(overrides=sms.sms_overrides(twilio_api=fake_twilio.url))
    admin = d.api(d.add_agent(role="admin"))
    driver = browser(tmp_path / "patient", 390, 844)
    try:
        driver.get(d.url + "/widget/demo")
        wait(driver, lambda b: shadow(b).find_element(By.CSS_SELECTOR, "button.launcher")).click()
        offer = wait(driver, lambda b: shadow(b).find_element(By.CSS_SELECTOR, ".offer"))
        wait(driver, lambda b: "Nobody is available" in offer.text, message="nobody available said")
        shadow(driver).find_element(By.CSS_SELECTOR, "textarea").send_keys("Please text me about my refill" + Keys.ENTER)
        address = wait(driver, lambda b: shadow(b).find_element(By.CSS_SELECTOR, "#sb-address"), message="continue form offered")
        assert Select(shadow(driver).find_element(By.CSS_SELECTOR, "#sb-channel")).first_selected_option.get_attribute("value") == "sms"
        address.send_keys("not a number" + Keys.ENTER)
        wait(driver, lambda b: "does not look like a valid" in shadow(b).find_element(By.CSS_SELECTOR, "p.status").text,
             message="a bad number is explained")
        address = shadow(driver).find_element(By.CSS_SELECTOR, "#sb-address")
        address.clear()
        address.send_keys("(415) 555-0188" + Keys.ENTER)
        # The notice stays in the offer box (the status line below it is transient: later
        # frames and connection states write there).
        wait(driver, lambda b: "We will answer by text message" in shadow(b).find_element(By.CSS_SELECTOR, ".offer").text,
             message="continued")
        driver.save_screenshot(str(ARTIFACTS / "chat-widget-continue-sms.png"))
    finally:
        driver.quit()
    conversation = [c for c in admin.list(status="any") if c["channel"] == "sms"][0]
    admin.reply(conversation["id"], "Your refill is ready.")
    call = h.wait_until(lambda: [c for c in fake_twilio.calls if c.body == "Your refill is ready."] or None, 20, 0.1, "SMS sent")[0]
    assert call.form["To"] == "+14155550188"
