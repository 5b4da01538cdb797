"""Writes this folder: broken scenario and data files, and expected.yaml (what each must be told).

    .venv/bin/python tests/bad_inputs/make_corpus.py
"""
import re
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / 'tests' / 'bad_inputs'
base2 = (ROOT / 'scenarios' / 'trondelag_arbitrage.yaml').read_text().replace('../data', '../../data')
lem = (ROOT / 'scenarios' / 'ieee_eu_lv_lem_plain.yaml').read_text().replace('../data', '../../data').replace(
    'learned_bids_file: learned/', 'learned_bids_file: ../../scenarios/learned/')
mlec = (ROOT / 'scenarios' / 'ieee_eu_lv_three_lecs.yaml').read_text().replace('../data', '../../data')
expected = {}

def case(name, text, *needles, base=None):
    (OUT / name).write_text(text)
    expected[name] = list(needles)

def sub(text, old, new, count=1):
    assert old in text, old
    return text.replace(old, new, count)

# --- community-battery scenarios
case('wrong_type_horizon.yaml', sub(base2, 'horizon_h: 24', 'horizon_h: one day'), 'horizon_h', 'number')
_data = yaml.safe_load(base2); del _data['battery']
case('missing_battery.yaml', yaml.safe_dump(_data, sort_keys=False), 'battery', 'required')
case('negative_capacity.yaml', sub(base2, 'capacity_mwh: 1.2', 'capacity_mwh: -1.2'), 'battery.capacity_mwh', 'greater than 0')
case('zero_power.yaml', sub(base2, 'power_mw: 0.6', 'power_mw: 0'), 'battery.power_mw', 'greater than 0')
case('efficiency_above_one.yaml', sub(base2, 'efficiency: 0.95', 'efficiency: 1.05'), 'battery.efficiency', 'less than or equal to 1')
case('efficiency_zero.yaml', sub(base2, 'efficiency: 0.95', 'efficiency: 0'), 'battery.efficiency', 'greater than 0')
case('soc_above_one.yaml', sub(base2, 'soc_initial: 0.5', 'soc_initial: 1.5'), 'battery.soc_initial', 'less than or equal to 1')
case('voltage_band_inverted.yaml', sub(base2, '  ext_grid_vm_pu: 1.0', '  ext_grid_vm_pu: 1.0\n  vm_min_pu: 1.1\n  vm_max_pu: 0.9'), 'grid', 'vm_min_pu must be below vm_max_pu')
case('unknown_framework.yaml', sub(base2, 'framework: decentralised', 'framework: centralised'), 'framework')
case('unknown_solver.yaml', sub(base2, 'solver: glpk', 'solver: cplex'), 'ems.solver', "'glpk' or 'highs'")
case('unknown_grid_solver.yaml', sub(base2, 'solver: pandapower', 'solver: matpower'), 'grid.solver')
case('unknown_field.yaml', sub(base2, 'horizon_h: 24', 'horizon_h: 24\nhorizon_days: 1'), 'horizon_days', 'Extra inputs')
case('zero_households.yaml', sub(base2, 'count: 120', 'count: 0'), 'households.count', 'greater than 0')
case('bad_name.yaml', re.sub(r'\nname: [^\n]*', '\nname: my scenario!', base2, count=1), 'name', 'pattern')
case('yaml_syntax.yaml', sub(base2, 'horizon_h: 24', 'horizon_h: [24'), 'line', 'invalid YAML')
case('not_a_mapping.yaml', '- just\n- a list\n', 'mapping')
case('empty.yaml', '', 'empty')
case('horizon_past_prices.yaml', sub(base2, 'horizon_h: 24', 'horizon_h: 9000'), 'data', 'price')
case('missing_price_file.yaml', re.sub(r'price_file: \S+', 'price_file: ../../data/prices/no_such_file.csv', base2), 'market.price_file', 'not found')
case('missing_profile_column.yaml', sub(base2, 'H0-A,', 'H0-Z,'), 'H0-Z', 'missing')
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
price_case('prices_short', prices[:12], 'prices_short.csv', 'covers')

# --- local market and three LECs
case('lem_unknown_tariff.yaml', sub(lem, 'tariff_scheme: plain', 'tariff_scheme: flat'), 'market.tariff_scheme')
case('lem_horizon_past_pv.yaml', sub(lem, 'horizon_h: 24', 'horizon_h: 9000'), 'horizon_h', 'PV data')
case('lem_zero_copies.yaml', sub(lem, 'load_peak_kw: 140', 'load_peak_kw: 140\n  copies: 0'), 'feeder.copies', 'greater than or equal to 1')
case('lem_bids_other_tariff.yaml', sub(lem, 'ieee_eu_lv_lem_plain_bids.json', 'ieee_eu_lv_lem_bihourly_bids.json').replace('tariff_scheme: plain', 'tariff_scheme: plain'), 'bids')
(OUT / 'bids_broken.json').write_text('{"scenario": "x", "bids_eur_per_kwh": {"CHP1": [0.1]}')
case('lem_bids_broken.yaml', re.sub(r'learned_bids_file: \S+', 'learned_bids_file: bids_broken.json', lem), 'bids_broken.json', 'not a learned-bids file')
case('lem_feeder_missing.yaml', sub(lem, 'data_dir: ../../data/ieee_eulv', 'data_dir: ../../data/nowhere'), 'feeder.data_dir')
case('mlec_unknown_framework.yaml', sub(mlec, 'framework: decentralised', 'framework: centralised'), 'framework')
case('mlec_too_many_lecs.yaml', sub(mlec, 'count: 3', 'count: 9'), 'lecs.count', 'less than or equal to 5')
case('mlec_unknown_platform_lec.yaml', sub(mlec, 'on_platform: [lec1, lec2, lec3]', 'on_platform: [lec1, lec7]'), 'lec7')
case('mlec_band_inverted.yaml', sub(mlec, '  vm_min_pu: 0.90', '  vm_min_pu: 1.20'), 'dso', 'vm_min_pu must be below vm_max_pu')

(OUT / 'expected.yaml').write_text('# file: substrings its one-line error must contain (besides the file name)\n' + yaml.safe_dump(expected, sort_keys=True))
print(len(expected), 'cases')
