"""Writes this folder: broken scenario and data files, and expected.yaml (what each must be told).

    .venv/bin/python tests/bad_inputs/make_corpus.py
"""
import json
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

# --- found only while running: exit code 2 all the same (tests/test_bad_inputs.py runs these)
case('run_power_flow_diverges.yaml', sub(base2, 'sn_mva: 1.6', 'sn_mva: 0.1'), 'grid', 'power flow did not converge', 'simulated time 2019-05-26 09:00', 'found by federate dso')

(OUT / 'expected.yaml').write_text('# file: substrings its one-line error must contain (besides the file name)\n' + yaml.safe_dump(expected, sort_keys=True))
print(len(expected), 'cases')
