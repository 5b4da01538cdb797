"""Writes this folder: broken scenario and data files, and expected.yaml (what each must be told).

    .venv/bin/python tests/bad_inputs/make_corpus.py
"""
import json
import re
import shutil
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / 'tests' / 'bad_inputs'
base2 = (ROOT / 'scenarios' / 'trondelag_arbitrage.yaml').read_text().replace('../data', '../../data')
lem = (ROOT / 'scenarios' / 'ieee_eu_lv_lem_plain.yaml').read_text().replace('../data', '../../data').replace(
    'learned_bids_file: learned/', 'learned_bids_file: ../../scenarios/learned/')
mlec = (ROOT / 'scenarios' / 'ieee_eu_lv_three_lecs.yaml').read_text().replace('../data', '../../data')
expected = {}
for old in OUT.iterdir():  # the folder holds what this script writes, and nothing left over from before
    if old.name != 'make_corpus.py':
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()

def case(name, text, *needles, base=None):
    assert name not in expected, name
    assert not any(n in name for n in needles), name  # the file name alone must not satisfy a needle
    (OUT / name).write_text(text)
    expected[name] = list(needles)

def sub(text, old, new, count=1):
    assert old in text, old
    return text.replace(old, new, count)

# --- community-battery scenarios
case('wrong_type_horizon.yaml', sub(base2, 'horizon_h: 24', 'horizon_h: one day'), 'horizon_h', "Input should be a valid number, not the text 'one day'")
_data = yaml.safe_load(base2); del _data['battery']
case('missing_battery.yaml', yaml.safe_dump(_data, sort_keys=False), ': battery: ', 'Field required')
case('negative_capacity.yaml', sub(base2, 'capacity_mwh: 1.2', 'capacity_mwh: -1.2'), 'battery.capacity_mwh', 'greater than 0')
case('capacity_in_kwh.yaml', sub(base2, 'capacity_mwh: 1.2', 'capacity_mwh: 1200'), 'battery.capacity_mwh', 'less than or equal to 1000')
case('transformer_resistance_above_impedance.yaml', sub(base2, 'vkr_percent: 1.0', 'vkr_percent: 9.0'),
     'grid.transformer.vkr_percent', 'must be below vk_percent')
case('power_factor_implausible.yaml', sub(base2, 'power_factor: 0.97', 'power_factor: 0.001'),
     'households.power_factor', 'greater than or equal to 0.5')
case('zero_power.yaml', sub(base2, 'power_mw: 0.6', 'power_mw: 0'), 'battery.power_mw', 'greater than 0')
case('efficiency_above_one.yaml', sub(base2, 'efficiency: 0.95', 'efficiency: 1.05'), 'battery.efficiency', 'less than or equal to 1')
case('efficiency_zero.yaml', sub(base2, 'efficiency: 0.95', 'efficiency: 0'), 'battery.efficiency', 'greater than 0')
case('soc_above_one.yaml', sub(base2, 'soc_initial: 0.5', 'soc_initial: 1.5'), 'battery.soc_initial', 'less than or equal to 1')
case('voltage_band_inverted.yaml', sub(base2, '  ext_grid_vm_pu: 1.0', '  ext_grid_vm_pu: 1.0\n  vm_min_pu: 1.1\n  vm_max_pu: 0.9'), 'grid', 'vm_min_pu must be below vm_max_pu')
case('unknown_framework.yaml', sub(base2, 'framework: decentralised', 'framework: centralised'), 'framework:', "Input should be 'decentralised', not the text 'centralised'")
case('unknown_solver.yaml', sub(base2, 'solver: glpk', 'solver: cplex'), 'ems.solver', "'glpk' or 'highs'")
case('unknown_grid_solver.yaml', sub(base2, 'solver: pandapower', 'solver: matpower'), 'grid.solver', "Input should be 'pandapower', 'power-grid-model' or 'opendss', not the text 'matpower'")
case('unknown_field.yaml', sub(base2, 'horizon_h: 24', 'horizon_h: 24\nhorizon_days: 1'), 'horizon_days', 'Extra inputs are not permitted')
case('kind_missing.yaml', sub(base2, 'kind: community_battery\n', ''), 'kind: missing', 'add `kind: community_battery`')
case('lem_kind_missing.yaml', sub(lem, 'kind: local_market\n', ''), 'kind: missing', 'add `kind: local_market`')
case('mlec_kind_missing.yaml', sub(mlec, 'kind: three_lecs\n', ''), 'kind: missing', 'add `kind: three_lecs`')
case('unknown_study.yaml', sub(base2, 'kind: community_battery', 'kind: microgrid'), 'kind: ', "'microgrid' is no study")
case('zero_households.yaml', sub(base2, 'count: 120', 'count: 0'), 'households.count', 'greater than 0')
case('bad_name.yaml', re.sub(r'\nname: [^\n]*', '\nname: my scenario!', base2, count=1), ': name: ', 'String should match pattern')
case('yaml_syntax.yaml', sub(base2, 'horizon_h: 24', 'horizon_h: [24'), 'line', 'invalid YAML')
case('not_a_mapping.yaml', '- just\n- a list\n', '(top level)', 'expected a mapping of scenario fields')
case('empty.yaml', '', '(file)', 'the file is empty; a scenario is a mapping of fields')
case('horizon_past_prices.yaml', sub(base2, 'horizon_h: 24', 'horizon_h: 9000'), 'data', 'NO1_dayahead_2019_hourly_EUR_per_MWh.csv', "series 'price' covers 2019-01-01 00:00:00 to 2020-01-01 01:00:00, not 2019-05-26 00:00:00 to 2020-06-04 00:00:00")
case('missing_price_file.yaml', re.sub(r'price_file: \S+', 'price_file: ../../data/prices/no_such_file.csv', base2), 'market.price_file', 'not found')
case('missing_profile_column.yaml', sub(base2, 'H0-A,', 'H0-Z,'), 'simbench_H0_household_profiles_2016_15min.csv', "column 'H0-Z_pload' missing")
case('negative_annual_consumption.yaml', sub(base2, 'annual_consumption_kwh: 16000', 'annual_consumption_kwh: -16000'), 'households.annual_consumption_kwh', 'greater than 0')

# --- price data files (a day of 2019 is enough for a 24 h scenario from 1 January)
prices = (ROOT / 'data' / 'prices' / 'NO1_dayahead_2019_hourly_EUR_per_MWh.csv').read_text().splitlines()[:60]
day = re.sub(r'start: \S+', 'start: 2019-01-01T00:00:00', base2)
def price_case(name, lines, *needles):
    (OUT / f'{name}.csv').write_text('\n'.join(lines) + '\n')
    case(f'{name}.yaml', re.sub(r'price_file: \S+', f'price_file: {name}.csv', day), *needles)
price_case('prices_nan', prices[:10] + [prices[10].split(',')[0] + ',n/a'] + prices[11:], 'prices_nan.csv', 'row 11', 'not a number')
price_case('prices_gap', prices[:10] + prices[14:], 'prices_gap.csv', 'evenly spaced')
price_case('prices_eur_per_kwh', [prices[0]] + [f"{l.split(',')[0]},{float(l.split(',')[1]) / 1000:.5f}" for l in prices[1:]], 'prices_eur_per_kwh.csv', 'EUR/kWh')
price_case('prices_three_columns', [l + ',x' for l in prices], 'prices_three_columns.csv', '2 columns')
price_case('prices_no_offset', [prices[0]] + [l.replace('+01:00', '') for l in prices[1:]], 'prices_no_offset.csv', 'row 2', 'UTC offset')
price_case('prices_short', prices[:12], 'prices_short.csv', "series 'price' covers 2019-01-01 00:00:00 to 2019-01-01 11:00:00, not 2019-01-01 00:00:00 to 2019-01-02 00:00:00")

# --- local market and three LECs
case('lem_unknown_tariff.yaml', sub(lem, 'tariff_scheme: plain', 'tariff_scheme: flat'), 'market.tariff_scheme', "Input should be 'plain' or 'bihourly', not the text 'flat'")
case('lem_horizon_past_pv.yaml', sub(lem, 'horizon_h: 24', 'horizon_h: 9000'), 'horizon_h', 'PV data')
case('lem_zero_copies.yaml', sub(lem, 'load_peak_kw: 140', 'load_peak_kw: 140\n  copies: 0'), 'feeder.copies', 'greater than or equal to 1')
case('lem_bids_other_tariff.yaml', sub(lem, 'ieee_eu_lv_lem_plain_bids.json', 'ieee_eu_lv_lem_bihourly_bids.json').replace('tariff_scheme: plain', 'tariff_scheme: plain'), 'market.learned_bids_file', 'ieee_eu_lv_lem_bihourly_bids.json', 'is above the plain retail tariff', 'learnt for another tariff?')
(OUT / 'bids_broken.json').write_text('{"scenario": "x", "bids_eur_per_kwh": {"CHP1": [0.1]}')
case('lem_bids_broken.yaml', re.sub(r'learned_bids_file: \S+', 'learned_bids_file: bids_broken.json', lem), 'bids_broken.json', 'not a learned-bids file')
case('lem_feeder_missing.yaml', sub(lem, 'data_dir: ../../data/ieee_eulv', 'data_dir: ../../data/nowhere'), 'feeder.data_dir', 'not an IEEE European LV data folder')
case('mlec_unknown_framework.yaml', sub(mlec, 'framework: decentralised', 'framework: centralised'), 'framework:', "Input should be 'decentralised', 'distributed' or 'p2p', not the text 'centralised'")
case('mlec_too_many_lecs.yaml', sub(mlec, 'count: 3', 'count: 9'), 'lecs.count', 'less than or equal to 5')
case('mlec_unknown_platform_lec.yaml', sub(mlec, 'on_platform: [lec1, lec2, lec3]', 'on_platform: [lec1, lec7]'), 'lecs.on_platform', "unknown LEC 'lec7'; the LECs are lec1, lec2, lec3")
case('mlec_band_inverted.yaml', sub(mlec, '  vm_min_pu: 0.90', '  vm_min_pu: 1.20'), 'dso', 'vm_min_pu must be below vm_max_pu')

# --- SoC window, connection limit (an LP with no solution), duplicated names, broker
case('soc_limits_inverted.yaml', sub(base2, 'soc_initial: 0.5', 'soc_initial: 0.5\n  soc_min: 0.8\n  soc_max: 0.2'), 'battery', 'soc_min must be below soc_max')
case('soc_initial_outside_window.yaml', sub(base2, 'soc_initial: 0.5', 'soc_initial: 0.5\n  soc_min: 0.6'), 'battery', 'soc_initial 0.5 lies outside soc_min..soc_max')
case('import_limit_infeasible.yaml', sub(base2, '  ext_grid_vm_pu: 1.0', '  ext_grid_vm_pu: 1.0\n  import_limit_mw: 0.2'), 'grid.import_limit_mw', 'no battery schedule keeps the import at or below 0.2 MW on 2019-05-26')
case('duplicate_load_profile.yaml', sub(base2, 'H0-A, H0-B,', 'H0-A, H0-B, H0-A,'), 'households.load_profiles', "'H0-A' appears twice")
case('mlec_duplicate_platform_lec.yaml', sub(mlec, 'on_platform: [lec1, lec2, lec3]', 'on_platform: [lec1, lec2, lec1]'), 'lecs.on_platform', "'lec1' appears twice")
case('broker_all_interfaces.yaml', base2 + 'broker: {address: 0.0.0.0}\n', 'broker.address', 'not 0.0.0.0')
case('broker_key_with_blank.yaml', base2 + 'broker: {address: 127.0.0.1, key: my key}\n', 'broker.key', 'pattern')

# --- broken profile files (read whole before anything else, so a few rows show the error)
household = (ROOT / 'data' / 'household' / 'simbench_H0_household_profiles_2016_15min.csv').read_text().splitlines()[:12]
def household_case(name, lines, *needles):
    (OUT / f'{name}.csv').write_text('\n'.join(lines) + '\n')
    case(f'{name}.yaml', re.sub(r'load_profile_file: \S+', f'load_profile_file: {name}.csv', base2), *needles)
household_case('household_nan', household[:5] + [household[5].replace(household[5].split(',')[1], 'n/a', 1)] + household[6:], 'household_nan.csv', 'row 6', "H0-A_pload is 'n/a', not a number")
household_case('household_duplicate_column', [household[0].replace('H0-B_pload', 'H0-A_pload')] + household[1:], 'household_duplicate_column.csv', "'H0-A_pload' appears twice")
pv = (ROOT / 'data' / 'pv' / 'simbench_PV_profiles_2016_15min.csv').read_text().splitlines()[:12]
(OUT / 'pv_empty_value.csv').write_text('\n'.join(pv[:8] + [pv[8].split(',', 1)[0] + ',' + ',' * 7]  + pv[9:]) + '\n')
case('pv_empty_value.yaml', re.sub(r'(pv:\n(?:    .*\n)*?    profile_file: )\S+', r'\1pv_empty_value.csv', base2), 'pv_empty_value.csv', 'row 9', 'PV1 is empty')
case('lem_pv_nan.yaml', re.sub(r'(pv:\n(?:    .*\n)*?    profile_file: )\S+', r'\1pv_empty_value.csv', lem), 'pv_empty_value.csv', 'row 9', 'PV1 is empty')

# --- broken feeder folders (csv/ only: the tables are checked before the profiles are read)
def feeder_case(name, table, edit, *needles):
    folder = OUT / name / 'csv'
    folder.mkdir(parents=True, exist_ok=True)
    for src in (ROOT / 'data' / 'ieee_eulv' / 'csv').glob('*.csv'):
        text = src.read_text()
        (folder / src.name).write_text(edit(text) if src.name == table else text)
    case(f'{name}.yaml', sub(lem, 'data_dir: ../../data/ieee_eulv', f'data_dir: {name}'), 'feeder.data_dir', *needles)
feeder_case('feeder_unknown_bus', 'Loads.csv', lambda t: t.replace('LOAD2,1,47,', 'LOAD2,1,4711,'), 'Loads.csv', 'line 5', 'bus 4711 of LOAD2 is not a bus of Buscoords.csv')
feeder_case('feeder_duplicate_load', 'Loads.csv', lambda t: t.replace('LOAD3,', 'LOAD2,', 1), 'Loads.csv', 'load LOAD2 appears twice')

# --- learnt bids for a CHP the community does not have
bids = json.loads((ROOT / 'scenarios' / 'learned' / 'ieee_eu_lv_lem_plain_bids.json').read_text())['bids_eur_per_kwh']
bids['CHP99'] = bids.pop('CHP1')
(OUT / 'bids_unknown_chp.json').write_text(json.dumps({'scenario': 'ieee_eu_lv_lem_plain', 'unit': 'EUR/kWh', 'bids_eur_per_kwh': bids}) + '\n')
case('lem_bids_unknown_chp.yaml', re.sub(r'learned_bids_file: \S+', 'learned_bids_file: bids_unknown_chp.json', lem), 'bids_unknown_chp.json', "CHP99")

# --- files that are not tables, blank lines counted, the broker elsewhere, a horizon the market cannot serve
price_case('prices_empty', [], 'prices_empty.csv', 'empty file')
price_case('prices_blank_line_then_nan', prices[:10] + [''] + [prices[10].split(',')[0] + ',n/a'] + prices[11:], 'prices_blank_line_then_nan.csv', 'row 12', 'not a number')
household_case('household_header_only', household[:1], 'household_header_only.csv', 'no data rows')
(OUT / 'household_latin1.csv').write_bytes(('\n'.join(household[:3]) + '\n').encode().replace(b'H0-A_pload', b'H0-A_pl\xe9ad'))
case('household_latin1.yaml', re.sub(r'load_profile_file: \S+', 'load_profile_file: household_latin1.csv', base2), 'household_latin1.csv', 'not UTF-8')
feeder_case('feeder_empty_loads', 'Loads.csv', lambda t: '\n'.join(t.splitlines()[:2]) + '\n', 'Loads.csv', 'no table')
feeder_case('feeder_no_source', 'Source.csv', lambda t: '# no source here\n', 'Source.csv', '[Source] section')
case('broker_not_this_host.yaml', base2 + 'broker: {address: 203.0.113.77}\n', 'broker.address', "'203.0.113.77' is not an address of this host")
case('broker_not_an_ip.yaml', base2 + 'broker: {address: 999.1.1.1}\n', 'broker.address', "'999.1.1.1' is not an IPv4 address")
case('horizon_part_market_step.yaml', sub(base2, 'horizon_h: 24', 'horizon_h: 24.25').replace('ems_min: 60', 'ems_min: 15'), 'horizon_h', 'whole number of market steps')
case('import_limit_boolean.yaml', sub(base2, '  ext_grid_vm_pu: 1.0', '  ext_grid_vm_pu: 1.0\n  import_limit_mw: true'), 'grid.import_limit_mw', 'valid number')

# --- issue 13: every class of bad input, for each kind of scenario it applies to
KINDS = {'': base2, 'lem_': lem, 'mlec_': mlec}

def line_of(text, needle, after=0):
    """The 1-based line of the first line of ``text`` from line ``after`` on that starts with ``needle``."""
    lines = text.splitlines()
    return next(n for n, l in enumerate(lines, start=1) if n > after and l.startswith(needle))

def duplicated(text, key_line):
    """``text`` with the line starting with ``key_line`` given twice; returns the text and both line numbers."""
    first = line_of(text, key_line)
    lines = text.splitlines()
    lines.insert(first, lines[first - 1])
    return '\n'.join(lines) + '\n', first, first + 1

# numbers that are no numbers: inf and nan (YAML .inf/.nan), the text 'inf', a boolean, a quoted number
NUMBER_FIELDS = {  # kind: (dotted field, its line in the file, the value there)
    '': ('battery.capacity_mwh', '  capacity_mwh: 1.2', '1.2'),
    'lem_': ('participants.chp.capacity_kw', 'capacity_kw: 10', '10'),
    'mlec_': ('lecs.home_battery_kwh', '  home_battery_kwh: 10', '10'),
}
TARIFFS = {  # kind: (dotted field, its text, what replaces it with a nan)
    '': ('market.feed_in_tariff', 'feed_in_tariff: null', 'feed_in_tariff: .nan'),
    'lem_': ('participants.chp.b_eur_per_kwh', 'b_eur_per_kwh: 0.20', 'b_eur_per_kwh: .nan'),
    'mlec_': ('tariff.feed_in_eur_per_kwh', 'feed_in_eur_per_kwh: 0.045', 'feed_in_eur_per_kwh: .nan'),
}
for kind, text in KINDS.items():
    field, line, value = NUMBER_FIELDS[kind]
    leaf = line.split(':')[0]  # with its indentation
    case(f'{kind}number_inf.yaml', sub(text, line, f'{leaf}: .inf'), field, 'finite number, not the number inf')
    case(f'{kind}number_inf_text.yaml', sub(text, line, f'{leaf}: inf'), field, "valid number, not the text 'inf'")
    case(f'{kind}number_boolean_on.yaml', sub(text, line, f'{leaf}: on'), field,
         'valid number, not the boolean true (YAML reads yes/no/on/off/true/false as booleans)')
    case(f'{kind}number_quoted.yaml', sub(text, line, f'{leaf}: "{value}"'), field, f"valid number, not the text '{value}'")
    tariff, old, new = TARIFFS[kind]
    case(f'{kind}tariff_nan.yaml', sub(text, old, new), tariff, 'finite number, not the number nan')
    case(f'{kind}horizon_inf.yaml', sub(text, 'horizon_h: 24', 'horizon_h: .inf'), 'horizon_h',
         'finite number, not the number inf')
    top, first, second = duplicated(text, 'horizon_h: ')
    case(f'{kind}duplicate_key_top.yaml', top, f'line {second}', f"key 'horizon_h' appears twice (first on line {first})")
    nested_key = {'': '  power_mw: ', 'lem_': '  solver: merit_order', 'mlec_': '  margin_pu: '}[kind]
    nested, first, second = duplicated(text, nested_key)
    name = nested_key.split(':')[0].strip()
    case(f'{kind}duplicate_key_nested.yaml', nested, f'line {second}', f"key '{name}' appears twice (first on line {first})")
    year = '2019' if kind == '' else '2016'
    impossible = re.sub(r'\nstart: \S+', f'\nstart: {year}-02-30T00:00:00', text, count=1)
    case(f'{kind}date_february_30.yaml', impossible, f'line {line_of(impossible, "start:")}',
         f"'{year}-02-30T00:00:00' is not a calendar date", 'day is out of range for month')
    (OUT / f'{kind}utf16.yaml').write_bytes(text.encode('utf-16'))
    expected[f'{kind}utf16.yaml'] = ['(file)', 'UTF-16 text; save the scenario as UTF-8']
    case(f'{kind}name_dotdot.yaml', re.sub(r'\nname: [^\n]*', "\nname: '..'", text, count=1), ': name: ',
         "String should match pattern")
    case(f'{kind}name_300_characters.yaml', re.sub(r'\nname: [^\n]*', '\nname: ' + 'n' * 300, text, count=1), ': name: ',
         'String should have at most 100 characters')
    # a start outside the calendar, a horizon too long to end in it or too short to hold one step
    case(f'{kind}start_year_9999.yaml', re.sub(r'\nstart: \S+', '\nstart: 9999-12-31T00:00:00', text, count=1), 'start:',
         'the year 9999 is outside 1900-2199')
    case(f'{kind}horizon_tiny.yaml', sub(text, 'horizon_h: 24', 'horizon_h: 1.0e-9'), 'horizon_h', '1e-09 h is shorter than one')
case('start_year_1.yaml', re.sub(r'\nstart: \S+', '\nstart: 0001-01-01T00:00:00', base2, count=1), 'start:',
     'the year 1 is outside 1900-2199')
case('horizon_past_2199.yaml', sub(base2, 'horizon_h: 24', 'horizon_h: 1.0e9'), 'horizon_h',
     '1e+09 h from 2019-05-26T00:00:00 end after 2199')
case('households_billions.yaml', sub(base2, 'count: 120', 'count: 1000000000000'), 'households.count',
     'less than or equal to 100000')
(OUT / 'binary.yaml').write_bytes(b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR' + bytes(range(256)))
assert 'binary.yaml' not in expected
expected['binary.yaml'] = ['(file)', 'a binary file (NUL bytes), not a YAML scenario']
(OUT / 'utf16_no_bom.yaml').write_bytes(base2.encode('utf-16-le'))
expected['utf16_no_bom.yaml'] = ['(file)', 'UTF-16 text; save the scenario as UTF-8']
case('mlec_margin_beyond_half_band.yaml', sub(mlec, 'margin_pu: 0.005', 'margin_pu: 0.15'), 'dso.margin_pu',
     '0.15 pu leaves no band: it must be below half the band 0.9-1.1 pu (0.1 pu)')
case('feed_in_tariff_per_kwh.yaml', sub(base2, 'feed_in_tariff: null', 'feed_in_tariff: 0.05'), 'market.feed_in_tariff',
     '0.05 currency/MWh is implausible', 'is it in EUR/kWh?')
case('lem_chp_cost_per_mwh.yaml', sub(lem, 'b_eur_per_kwh: 0.20', 'b_eur_per_kwh: 200'), 'participants.chp.b_eur_per_kwh',
     '200 EUR/kWh is implausible', 'is it in EUR/MWh or ct/kWh?')
case('mlec_feed_in_per_mwh.yaml', sub(mlec, 'feed_in_eur_per_kwh: 0.045', 'feed_in_eur_per_kwh: 45'),
     'tariff.feed_in_eur_per_kwh', '45 EUR/kWh is implausible', 'is it in EUR/MWh or ct/kWh?')

# price files: inf, a timestamp twice, out of order, one row, one that is no timestamp
def cell(line, column, value):
    cells = line.split(',')
    cells[column] = value
    return ','.join(cells)
price_case('prices_inf', prices[:7] + [cell(prices[7], 1, 'inf')] + prices[8:], 'prices_inf.csv', 'row 8',
           'price is inf, not a finite number')
price_case('prices_duplicate_time', prices[:6] + [prices[5]] + prices[6:], 'prices_duplicate_time.csv', 'row 7',
           "timestamp '2019-01-01 04:00:00+01:00' appears twice (first in row 6)")
price_case('prices_out_of_order', prices[:5] + [prices[6], prices[5]] + prices[7:], 'prices_out_of_order.csv', 'row 7',
           "timestamp '2019-01-01 04:00:00+01:00' comes before the previous row's '2019-01-01 05:00:00+01:00'")
price_case('prices_one_row', prices[:2], 'prices_one_row.csv', 'only one data row')
price_case('prices_bad_timestamp', prices[:9] + [cell(prices[9], 0, '2019-01-01 25:00:00+01:00')] + prices[10:],
           'prices_bad_timestamp.csv', 'row 10', "'2019-01-01 25:00:00+01:00' is not a timestamp")

# household profiles: a timestamp twice, a gap, out of order, no timestamp, one row, a column of zeros, inf, W for kW
def scaled(line, factor, columns):
    cells = line.split(',')
    for c in columns:
        cells[c] = f'{float(cells[c]) * factor:g}'
    return ','.join(cells)
household_case('household_duplicate_time', household[:4] + [household[3]] + household[4:], 'household_duplicate_time.csv',
               'row 5', "timestamp '2016-01-01T00:30' appears twice (first in row 4)")
household_case('household_gap', household[:4] + household[5:], 'household_gap.csv', 'row 5',
               "timestamp '2016-01-01T01:00' is 30 min after the previous row, not the file's step of 15 min",
               'evenly spaced')
household_case('household_out_of_order', household[:3] + [household[4], household[3]] + household[5:],
               'household_out_of_order.csv', 'row 5',
               "timestamp '2016-01-01T00:30' comes before the previous row's '2016-01-01T00:45'")
household_case('household_bad_timestamp', household[:6] + [cell(household[6], 0, '2016-01-01 T01:30')] + household[7:],
               'household_bad_timestamp.csv', 'row 7', "'2016-01-01 T01:30' is not a timestamp")
household_case('household_utc_offset', household[:3] + [cell(household[3], 0, '2016-01-01T00:30+01:00')] + household[4:],
               'household_utc_offset.csv', 'row 4', "timestamp '2016-01-01T00:30+01:00' has a UTC offset")
# under three hours of profile for a day from 1 January: the error names the file that falls short
(OUT / 'household_short.csv').write_text('\n'.join(household[:13]) + '\n')
case('household_short.yaml', re.sub(r'load_profile_file: \S+', 'load_profile_file: household_short.csv', day),
     'household_short.csv', "series 'load_mw' covers 2019-01-01 00:00:00 to 2019-01-01 02:45:00, not 2019-01-01 00:00:00 "
     "to 2019-01-02 00:00:00")
household_case('household_one_row', household[:2], 'household_one_row.csv', 'only one data row')
household_case('household_zero_column', [household[0]] + [cell(l, 3, '0') for l in household[1:]],
               'household_zero_column.csv', "column 'H0-B_pload' is zero throughout")
household_case('household_inf', household[:8] + [cell(household[8], 1, '-inf')] + household[9:], 'household_inf.csv',
               'row 9', 'H0-A_pload is -inf, not a finite number')
household_case('household_in_w', [household[0]] + [scaled(l, 1000, range(1, 13)) for l in household[1:]],
               'household_in_w.csv', 'H0-A_pload is 276.685 kW, implausible (expected 0 to 50 kW)', 'is it in W or MW?')

# PV profiles (all three kinds read them): a sunny morning of 26 May 2016
pv_rows = (ROOT / 'data' / 'pv' / 'simbench_PV_profiles_2016_15min.csv').read_text().splitlines()
noon = pv_rows.index(next(l for l in pv_rows if l.startswith('2016-05-26T10:00')))
pv = [pv_rows[0]] + pv_rows[noon:noon + 12]
PV_FIELD = {'': r'(pv:\n(?:    .*\n)*?    profile_file: )\S+', 'lem_': r'(pv:\n(?:    .*\n)*?    profile_file: )\S+',
            'mlec_': r'(\npv:\n(?:  .*\n)*?  profile_file: )\S+'}
def pv_case(name, lines, *needles):
    (OUT / f'{name}.csv').write_text('\n'.join(lines) + '\n')
    for kind, text in KINDS.items():
        pattern = PV_FIELD[kind]
        assert re.search(pattern, text), kind
        case(f'{kind}{name}.yaml', re.sub(pattern, rf'\g<1>{name}.csv', text, count=1), f'{name}.csv', *needles)
pv_case('pv_duplicate_time', pv[:3] + [pv[2]] + pv[3:], 'row 4', "timestamp '2016-05-26T10:15' appears twice (first in row 3)")
pv_case('pv_gap', pv[:6] + pv[7:], 'row 7', "timestamp '2016-05-26T11:30' is 30 min after the previous row, not the "
        "file's step of 15 min")
pv_case('pv_out_of_order', pv[:8] + [pv[9], pv[8]] + pv[10:], 'row 10',
        "timestamp '2016-05-26T11:45' comes before the previous row's '2016-05-26T12:00'")
pv_case('pv_bad_timestamp', pv[:4] + [cell(pv[4], 0, '26.05.2016 10:45')] + pv[5:], 'row 5',
        "'26.05.2016 10:45' is not a timestamp")
pv_case('pv_utc_offset', pv[:1] + [cell(pv[1], 0, '2016-05-26T09:00Z')] + pv[2:], 'row 2',
        "timestamp '2016-05-26T09:00Z' has a UTC offset")
# around the autumn change (02:00-02:59 twice on 30 October, as the summer-time labels have it): a gap before it
# is the error, not the repeated hour
autumn = next(n for n, l in enumerate(pv_rows) if l.startswith('2016-10-29T12:00'))
pv_case('pv_gap_before_autumn_change', [pv_rows[0], pv_rows[autumn]] + pv_rows[autumn + 2:autumn + 70], 'row 3',
        "timestamp '2016-10-29T12:30' is 30 min after the previous row, not the file's step of 15 min")
pv_case('pv_one_row', pv[:2], 'only one data row')
pv_case('pv_zero_column', [pv[0]] + [cell(l, 1, '0') for l in pv[1:]], "column 'PV1' is zero throughout")
pv_case('pv_nan_cell', pv[:10] + [cell(pv[10], 1, 'NaN')] + pv[11:], 'row 11', "PV1 is 'NaN', not a number")
pv_case('pv_inf', pv[:5] + [cell(pv[5], 1, 'inf')] + pv[6:], 'row 6', 'PV1 is inf, not a finite number')
pv_case('pv_percent', [pv[0]] + [scaled(l, 100, range(1, 9)) for l in pv[1:]], 'PV1 is', 'p.u., implausible (expected '
        '-0.05 to 1.5 p.u.)', 'is it in W, kW or %?')

# feeder folders: each a copy of the IEEE data with one number made impossible (served to the LEM and the three LECs)
def feeder_folder(name, table, edit):
    folder = OUT / name / 'csv'
    folder.mkdir(parents=True, exist_ok=True)
    for src in (ROOT / 'data' / 'ieee_eulv' / 'csv').glob('*.csv'):
        text = src.read_text()
        changed = edit(text) if src.name == table else text
        assert src.name != table or changed != text, name
        (folder / src.name).write_text(changed)
def feeder_cases(name, table, edit, *needles):
    feeder_folder(name, table, edit)
    for kind in ('lem_', 'mlec_'):
        case(f'{kind}{name}.yaml', sub(KINDS[kind], 'data_dir: ../../data/ieee_eulv', f'data_dir: {name}'),
             'feeder.data_dir', f'{name}/csv/{table}', *needles)
feeder_cases('feeder_source_zero_voltage', 'Source.csv', lambda t: t.replace('Voltage=11 kV', 'Voltage=0 kV'), 'line 3',
             "Voltage = 0 is impossible for the source's line-to-line voltage")
feeder_cases('feeder_trafo_zero_rating', 'Transformer.csv', lambda t: t.replace(',0.416,0.8,', ',0.416,0,'), 'line 3',
             'MVA of TR1 is 0: a rating must be positive')
feeder_cases('feeder_negative_short_circuit', 'Source.csv', lambda t: t.replace('ISC3=3000 A', 'ISC3=-3000 A'), 'line 5',
             'ISC3 = -3000 is impossible for the three-phase short-circuit current')
feeder_cases('feeder_text_impedance', 'LineCodes.csv', lambda t: t.replace('2c_.007,3,3.97,', '2c_.007,3,abc,'), 'line 3',
             "R1 of 2c_.007 is 'abc', not a finite number")
feeder_cases('feeder_negative_resistance', 'LineCodes.csv', lambda t: t.replace('2c_.0225,3,1.257,', '2c_.0225,3,-1.257,'),
             'line 4', 'R1 of line code 2c_.0225 is -1.257: an impedance or capacitance cannot be negative')
feeder_cases('feeder_power_factor_above_one', 'Loads.csv', lambda t: t.replace('LOAD2,1,47,B,0.23,1,wye,1,0.95,',
             'LOAD2,1,47,B,0.23,1,wye,1,1.05,'), 'line 5', 'PF of LOAD2 is 1.05: a power factor lies in (0, 1]')
# the IEEE load profile table in W: the feeder's tables are sound (a link to them), the profiles a thousand times too high
def profiles_cases(name, lines, *needles):
    folder = OUT / name
    folder.mkdir(exist_ok=True)
    if not (folder / 'csv').is_symlink():
        (folder / 'csv').symlink_to(Path('..') / '..' / '..' / 'data' / 'ieee_eulv' / 'csv')
    (folder / 'load_profiles_1min_100.csv').write_text('\n'.join(lines) + '\n')
    for kind in ('lem_', 'mlec_'):
        case(f'{kind}{name}.yaml', sub(KINDS[kind], 'data_dir: ../../data/ieee_eulv', f'data_dir: {name}'),
             'feeder.data_dir', f'{name}/load_profiles_1min_100.csv', *needles)
profiles = (ROOT / 'data' / 'ieee_eulv' / 'load_profiles_1min_100.csv').read_text().splitlines()[:6]
profiles_cases('feeder_profiles_in_w', [profiles[0]] + [','.join(l.split(',')[:2] + [f'{float(v) * 1000:g}'
               for v in l.split(',')[2:]]) for l in profiles[1:]], 'kW, implausible (expected 0 to 50 kW)', 'is it in W or MW?')
# a part of the day (the loads repeat a whole day), and a time that is not its row's minute
profiles_cases('feeder_profiles_part_of_day', profiles, 'line 6',
               'the profiles end at minute 5; they need one row a minute for the whole day (minutes 1 to 1440)')
profiles_cases('feeder_profiles_time_off', profiles[:3] + [profiles[3].replace(',00:03:00,', ',00:30:00,')] + profiles[4:],
               'line 4', "time '00:30:00' is not minute 3 (00:03:00)")
profiles_cases('feeder_profiles_minute_text', profiles[:4] + ['x' + profiles[4][1:]] + profiles[5:], 'line 5',
               "minute is 'x', not a number")

# --- found only while running: exit code 2 all the same (tests/test_bad_inputs.py runs these)
case('run_power_flow_diverges.yaml', sub(base2, 'sn_mva: 1.6', 'sn_mva: 0.1'), 'grid', 'power flow did not converge', 'simulated time 2019-05-26 09:00', 'found by federate dso')

(OUT / 'expected.yaml').write_text('# file: substrings its one-line error must contain (besides the file name)\n' + yaml.safe_dump(expected, sort_keys=True))
print(len(expected), 'cases')
