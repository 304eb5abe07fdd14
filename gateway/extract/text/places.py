"""Address lines: the city line of a block (city, region and postal code in the US, Canada,
UK and European layouts) and a country by ISO 3166 code or by name in the languages
partners write.
"""

from __future__ import annotations

import re

# Address lines: the last line of a block, city and postal code (US, Canada, UK, Europe).
_PLACE_PATTERNS = [
    re.compile(
        r"^(?P<city>[^\d,]+?),?\s+(?P<region>[A-Z]{2})\.?,?\s+(?P<postal_code>\d{5}(?:-\d{4})?)$"
    ),
    re.compile(
        r"^(?P<city>[^\d,]+?),?\s+(?P<region>[A-Z]{2})\.?,?\s+(?P<postal_code>[A-Z]\d[A-Z] ?\d[A-Z]\d)$"
    ),
    re.compile(r"^(?P<city>[^\d,]+?),?\s+(?P<postal_code>[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})$"),
    re.compile(r"^(?P<postal_code>[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}),?\s+(?P<city>[^\d,]+)$"),
    re.compile(
        r"^(?:[A-Z]{1,3} ?- ?)?(?P<postal_code>\d{4} ?[A-Z]{2}(?= )|\d{2}-\d{3}|\d{3} \d{2}|\d{4,5}),?\s+(?P<city>[^\d,][^\d]*)$"
    ),
]
_STREET = re.compile(
    r"(?i)\b(?:street|st|road|rd|avenue|ave|blvd|boulevard|lane|ln|drive|dr|way|pkwy|parkway|hwy|highway|suite|ste|"
    r"floor|unit|building|bldg|dock|box|postfach)\b|(?:stra(?:ss|ß)e|str\.|weg|gasse|platz|allee)\b"
)


def _city_line(text: str) -> dict[str, str] | None:
    """City, region, postal code (and a trailing country) from an address's last line."""
    line = " ".join(text.split()).rstrip(".")
    country: str | None = None
    head, sep, tail = line.rpartition(",")
    if sep and (code := _country(tail)) is not None:
        line, country = head.strip(), code
    for pattern in _PLACE_PATTERNS:
        m = pattern.match(line)
        if m and not _STREET.search(m.group("city")):
            place = {k: v.strip() for k, v in m.groupdict().items() if v}
            if country:
                place["country"] = country
            return place
    return None


_ISO2_CODES = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ "
    "CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR "
    "GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO "
    "JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR "
    "MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO "
    "RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV "
    "TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
)
_ISO2 = frozenset(_ISO2_CODES.split())
_COUNTRY_NAMES = {
    name: code
    for code, names in {
        "US": "united states|united states of america|usa|u.s.a.|u.s.",
        "CA": "canada|can",
        "MX": "mexico|méxico|mex",
        "GB": "united kingdom|great britain|england|scotland|wales|northern ireland|uk|u.k.|gbr",
        "IE": "ireland|irl",
        "DE": "germany|deutschland|deu|ger",
        "FR": "france|fra",
        "NL": "netherlands|the netherlands|nederland|holland|nld",
        "BE": "belgium|belgië|belgique|bel",
        "LU": "luxembourg|lux",
        "AT": "austria|österreich|aut",
        "CH": "switzerland|schweiz|suisse|svizzera|che",
        "IT": "italy|italia|ita",
        "ES": "spain|españa|esp",
        "PT": "portugal|prt",
        "DK": "denmark|danmark|dnk",
        "SE": "sweden|sverige|swe",
        "NO": "norway|norge|nor",
        "FI": "finland|suomi|fin",
        "IS": "iceland",
        "PL": "poland|polska|pol",
        "CZ": "czech republic|czechia|česko|cze",
        "SK": "slovakia|slovensko",
        "HU": "hungary|magyarország",
        "RO": "romania|românia",
        "BG": "bulgaria",
        "GR": "greece",
        "HR": "croatia|hrvatska",
        "SI": "slovenia|slovenija",
        "EE": "estonia",
        "LV": "latvia",
        "LT": "lithuania",
        "TR": "turkey|türkiye",
        "CN": "china|people's republic of china|prc",
        "HK": "hong kong",
        "TW": "taiwan",
        "JP": "japan",
        "KR": "south korea|korea|republic of korea",
        "IN": "india",
        "SG": "singapore",
        "AU": "australia|aus",
        "NZ": "new zealand",
        "BR": "brazil|brasil",
        "AR": "argentina",
        "CL": "chile",
        "CO": "colombia",
        "ZA": "south africa",
        "IL": "israel",
        "AE": "united arab emirates|uae",
        "SA": "saudi arabia",
    }.items()
    for name in names.split("|")
}


def _country(text: str) -> str | None:
    """An ISO 3166 alpha-2 code if `text` is just a country's name or code."""
    line = " ".join(text.split())
    if line.isupper() and line in _ISO2:
        return line
    if line == "UK":
        return "GB"
    return _COUNTRY_NAMES.get(line.casefold().rstrip("."), _COUNTRY_NAMES.get(line.casefold()))
